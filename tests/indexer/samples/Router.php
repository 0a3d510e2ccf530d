<?php
namespace App\Http;

use App\Http\Middleware\Auth;
use Psr\Http\Message\RequestInterface as Request;

require_once __DIR__ . '/helpers.php';

interface RouteMatcher
{
    public function matches(string $path): bool;
}

trait Loggable
{
    public function log(string $msg): void
    {
        error_log($msg);
    }
}

/**
 * Maps paths to handlers.
 */
class Router implements RouteMatcher
{
    use Loggable;

    private array $routes = [];

    public function add(string $path, callable $handler): self
    {
        $this->routes[$path] = $handler;
        return $this;
    }

    public function matches(string $path): bool
    {
        return isset($this->routes[$path]);
    }

    public function dispatch(Request $request)
    {
        $path = $request->getUri()->getPath();
        $this->log("dispatch $path");
        return ($this->routes[$path])($request);
    }
}

function make_router(): Router
{
    return new Router();
}
