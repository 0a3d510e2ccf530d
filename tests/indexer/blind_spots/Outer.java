public class Outer {
    static class Nested { void nestedMethod() {} }
    class Inner { void innerMethod() {} }
    interface Callback { void onDone(); }
    enum Mode { FAST { void apply() {} }, SLOW; void apply() {} }
    void run() {
        Runnable r = new Runnable() { public void run() { helperInAnon(); } void helperInAnon() {} };
        class LocalClass { void localMethod() {} }
    }
    record Pair(int a, int b) { int sum() { return a + b; } }
}
