// Chat state independent of VS Code: conversations, streamed deltas, final results.

export type DeltaKind = "text" | "tool_call" | "tool_result";

export interface ChatDelta {
  conversationId: string;
  kind: DeltaKind;
  text: string;
}

export interface ChatResult {
  conversationId: string;
  text: string;
  toolCalls?: unknown[];
  edits?: unknown[];
}

export interface Turn {
  id: number;
  question: string;
  mode: "ask" | "agent";
  answer: string;
  events: { kind: DeltaKind; text: string }[];
  done: boolean;
  streamed: boolean;
  error?: string;
  edits: number;
}

export function isChatDelta(value: unknown): value is ChatDelta {
  const v = value as ChatDelta;
  return typeof v === "object" && v !== null && typeof v.conversationId === "string" && typeof v.text === "string"
    && (v.kind === "text" || v.kind === "tool_call" || v.kind === "tool_result");
}

export class Conversation {
  readonly turns: Turn[] = [];
  private nextTurn = 1;

  constructor(readonly id: string) {}

  get running(): Turn | undefined {
    const last = this.turns[this.turns.length - 1];
    return last && !last.done ? last : undefined;
  }

  start(question: string, mode: "ask" | "agent"): Turn {
    const turn: Turn = { id: this.nextTurn++, question, mode, answer: "", events: [], done: false, streamed: false, edits: 0 };
    this.turns.push(turn);
    return turn;
  }

  /** Apply a coderflash/chatDelta; returns the turn it belongs to, or undefined to ignore it. */
  delta(d: ChatDelta): Turn | undefined {
    if (d.conversationId !== this.id) {
      return undefined;
    }
    const turn = this.running;
    if (!turn) {
      return undefined;
    }
    if (d.kind === "text") {
      turn.answer += d.text;
      turn.streamed = true;
    }
    turn.events.push({ kind: d.kind, text: d.text });
    return turn;
  }

  /** The final response: when nothing streamed, its text is the answer. */
  finish(result: ChatResult | null | undefined): Turn | undefined {
    const turn = this.running;
    if (!turn) {
      return undefined;
    }
    if (result && typeof result.text === "string" && (!turn.streamed || turn.answer.trim() === "")) {
      turn.answer = result.text;
    }
    turn.edits = Array.isArray(result?.edits) ? result!.edits!.length : 0;
    turn.done = true;
    return turn;
  }

  fail(message: string): Turn | undefined {
    const turn = this.running;
    if (!turn) {
      return undefined;
    }
    turn.error = message;
    turn.done = true;
    return turn;
  }
}
