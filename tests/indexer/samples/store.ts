import { EventEmitter } from "events";
import type { Reducer } from "./reducer";
import { shallowEqual } from "./util/equality";

export interface Action<T = unknown> {
  type: string;
  payload?: T;
}

export interface StoreOptions<S> {
  initialState: S;
  devtools?: boolean;
}

export type Listener<S> = (state: S, prev: S) => void;

export enum Status {
  Idle,
  Busy,
  Failed,
}

/** A minimal observable store. */
export class Store<S extends object> {
  private listeners: Set<Listener<S>> = new Set();
  private state: S;
  public status: Status = Status.Idle;

  constructor(private readonly reducer: Reducer<S>, options: StoreOptions<S>) {
    this.state = options.initialState;
  }

  getState(): S {
    return this.state;
  }

  dispatch<T>(action: Action<T>): void {
    const prev = this.state;
    const next = this.reducer(prev, action);
    if (!shallowEqual(prev, next)) {
      this.state = next;
      this.notify(prev);
    }
  }

  subscribe(listener: Listener<S>): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private notify(prev: S): void {
    for (const l of this.listeners) l(this.state, prev);
  }

  protected handleError = (err: Error): void => {
    this.status = Status.Failed;
    console.error(err);
  };

  static of<S extends object>(reducer: Reducer<S>, initialState: S): Store<S> {
    return new Store(reducer, { initialState });
  }
}

export abstract class Middleware<S> {
  abstract apply(store: Store<S & object>, action: Action): Action | null;

  describe(): string {
    return this.constructor.name;
  }
}

export function createStore<S extends object>(reducer: Reducer<S>, initialState: S): Store<S> {
  return Store.of(reducer, initialState);
}

export const selectStatus = <S extends object>(store: Store<S>): Status => store.status;

export declare function devtoolsConnect(name: string): void;

export namespace Internal {
  export function resetAll(stores: Store<object>[]): void {
    stores.forEach((s) => s.dispatch({ type: "@@reset" }));
  }
}

function combineReducers<S>(reducers: Record<string, Reducer<S>>): Reducer<S> {
  return (state, action) => {
    let next = state;
    for (const key of Object.keys(reducers)) next = reducers[key](next, action);
    return next;
  };
}

export default combineReducers;
