#include <cmath>
#include <memory>
#include <vector>
#include "shapes.hpp"

namespace geo {

class Shape {
public:
    virtual ~Shape() = default;
    virtual double area() const = 0;
    virtual const char *name() const { return "shape"; }
};

class Circle : public Shape {
public:
    explicit Circle(double r) : radius_(r) {}
    double area() const override { return M_PI * radius_ * radius_; }
    double radius() const;

private:
    double radius_;
};

struct Point {
    double x, y;
    double dist(const Point &o) const { return std::hypot(x - o.x, y - o.y); }
};

double Circle::radius() const { return radius_; }

template <typename T>
T clamp(T v, T lo, T hi) {
    return v < lo ? lo : (v > hi ? hi : v);
}

double total_area(const std::vector<std::unique_ptr<Shape>> &shapes) {
    double sum = 0;
    for (const auto &s : shapes) sum += s->area();
    return sum;
}

}  // namespace geo

int main() {
    std::vector<std::unique_ptr<geo::Shape>> v;
    v.push_back(std::make_unique<geo::Circle>(2.0));
    return geo::total_area(v) > 0 ? 0 : 1;
}
