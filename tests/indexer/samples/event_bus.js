'use strict';
const { EventEmitter } = require('events');
import { debounce } from './util/timing';
import * as path from 'path';

/**
 * A tiny event bus with wildcard topics.
 */
class EventBus extends EventEmitter {
  constructor(options = {}) {
    super();
    this.handlers = new Map();
    this.maxListeners = options.maxListeners || 10;
  }

  /** Subscribe to a topic. */
  subscribe(topic, handler) {
    if (!this.handlers.has(topic)) {
      this.handlers.set(topic, []);
    }
    this.handlers.get(topic).push(handler);
    return () => this.unsubscribe(topic, handler);
  }

  unsubscribe(topic, handler) {
    const list = this.handlers.get(topic) || [];
    this.handlers.set(topic, list.filter((h) => h !== handler));
  }

  static create(options) {
    return new EventBus(options);
  }

  get size() {
    return this.handlers.size;
  }

  *topics() {
    yield* this.handlers.keys();
  }

  async publishAsync(topic, payload) {
    await Promise.resolve();
    this.publish(topic, payload);
  }

  publish(topic, payload) {
    for (const [pattern, list] of this.handlers) {
      if (matchTopic(pattern, topic)) {
        list.forEach((h) => h(payload));
      }
    }
  }
}

function matchTopic(pattern, topic) {
  if (pattern === '*') return true;
  return pattern === topic || topic.startsWith(pattern.replace(/\*$/, ''));
}

const normalizeTopic = (topic) => path.normalize(topic).toLowerCase();

const legacyFormat = function (event) {
  return `${event.topic}:${JSON.stringify(event.payload)}`;
};

function* idGenerator(start) {
  let i = start;
  while (true) yield i++;
}

async function flushAll(bus) {
  const pending = [...bus.topics()].map((t) => bus.publishAsync(t, null));
  await Promise.all(pending);
}

const utils = {
  clamp: function (v, lo, hi) { return Math.min(hi, Math.max(lo, v)); },
  identity: (x) => x,
};

module.exports = { EventBus, matchTopic, normalizeTopic, legacyFormat, idGenerator, flushAll, utils, debounce };
