class Outer {
    class Nested {
        fun nestedFun() {}
    }

    inner class Inner {
        fun innerFun() {}
    }

    companion object {
        fun create(): Outer = Outer()
        const val LIMIT = 3
    }

    fun run() {
        val listener = object : Runnable {
            override fun run() {}
        }
        fun localFun() {}
    }
}

object Registry {
    fun register(name: String) {}
}

interface Plugin {
    fun load()
}

enum class Level {
    LOW, HIGH;

    fun next(): Level = HIGH
}

fun String.shout(): String = uppercase()

val topLevelLambda = { x: Int -> x + 1 }
