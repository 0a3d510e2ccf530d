namespace {
int hidden_helper(int x) { return x; }
}
extern "C" {
int c_entry(int y) { return y; }
}
namespace outer { namespace inner {
class Widget { public: void draw(); };
void Widget::draw() {}
} }
#ifdef USE_FAST
class FastPath { int go() { return 1; } };
#endif
