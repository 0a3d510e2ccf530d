package com.example.data

import com.example.data.model.User
import kotlinx.coroutines.flow.Flow

/** Stores users. */
interface UserRepository {
    fun find(id: Long): User?
    fun all(): List<User>
}

class InMemoryUserRepository(private val seed: List<User>) : UserRepository {
    private val users = seed.associateBy { it.id }.toMutableMap()

    override fun find(id: Long): User? {
        return users[id]
    }

    override fun all(): List<User> = users.values.toList()

    fun save(user: User) {
        users[user.id] = user
    }
}

object Repositories {
    fun inMemory(): UserRepository = InMemoryUserRepository(emptyList())
}

data class Page(val items: List<User>, val next: Int?)

enum class Source {
    MEMORY,
    NETWORK
}

typealias UserFilter = (User) -> Boolean

fun List<User>.active(): List<User> = filter { it.active }

val DEFAULT_PAGE_SIZE = 50
