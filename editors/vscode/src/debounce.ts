// A cancellable delay for debouncing inline completion requests.

export interface CancelLike {
  isCancellationRequested: boolean;
  onCancellationRequested?: (listener: () => void) => { dispose(): void };
}

/** Resolves true after `ms`, or false as soon as the token is cancelled. */
export function delay(ms: number, token?: CancelLike): Promise<boolean> {
  if (token?.isCancellationRequested) {
    return Promise.resolve(false);
  }
  if (ms <= 0) {
    return Promise.resolve(true);
  }
  return new Promise((resolve) => {
    let sub: { dispose(): void } | undefined;
    const timer = setTimeout(() => {
      sub?.dispose();
      resolve(!token?.isCancellationRequested);
    }, ms);
    sub = token?.onCancellationRequested?.(() => {
      clearTimeout(timer);
      sub?.dispose();
      resolve(false);
    });
  });
}
