declare module "legacy-lib" {
  export function legacyInit(opts: object): void;
  export interface LegacyOptions { verbose: boolean }
}
declare global {
  interface Window { appState: unknown }
}
export namespace Geometry {
  export function area(r: number): number { return r * r; }
  export namespace Inner { export class Point { x = 0; move(): void {} } }
}
export declare function declaredOnly(a: string): number;
declare class Ambient { method(): void }
export const arrowHelper = (x: number) => x + 1;
export const fnExpr = function named(y: number) { return y; };
export default function () { return 1; }
export abstract class Base { abstract run(): void; protected helperMethod() {} }
export type Alias = { a: number };
export enum Color { Red, Green }
const obj = { methodInObject() { return 1; }, arrowInObject: () => 2 };
