require 'json'
require_relative 'store/backend'

# A small LRU cache.
module Caching
  class LruCache
    attr_reader :capacity

    def initialize(capacity = 100)
      @capacity = capacity
      @store = {}
    end

    # Fetch a value, computing it when missing.
    def fetch(key)
      if @store.key?(key)
        value = @store.delete(key)
        @store[key] = value
      else
        value = yield(key)
        store(key, value)
      end
      value
    end

    def self.build(options = {})
      new(options.fetch(:capacity, 100))
    end

    private

    def store(key, value)
      @store.shift if @store.size >= capacity
      @store[key] = value
    end
  end

  def self.default_cache
    @default_cache ||= LruCache.new
  end
end
