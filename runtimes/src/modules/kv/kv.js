// kv: a key-value store private to this session (enable it with `--kv`).
// Evaluated once when the instance starts, with the glue's private `host`
// object (moduleCall / asyncModuleCall), which user code never sees.
(function (host) {
  "use strict";
  const kv = {
    /** The value stored under `key`, or `fallback`. */
    get(key, fallback) {
      const found = host.moduleCall("kv.get", { key });
      return found.found ? found.value : fallback;
    },
    /** Stores `value` (anything JSON can hold) under `key`. */
    set(key, value) {
      host.moduleCall("kv.set", { key, value: value === undefined ? null : value });
    },
    /** Removes `key`; returns whether it was there. */
    delete(key) {
      return host.moduleCall("kv.delete", { key });
    },
    /** The stored keys that start with `prefix`, sorted. */
    keys(prefix = "") {
      return host.moduleCall("kv.keys", { prefix });
    },
    /** Like get, as a promise: gathered calls reach the host as one batch. */
    async asyncGet(key, fallback) {
      const found = await host.asyncModuleCall("kv.get", { key });
      return found.found ? found.value : fallback;
    },
    async asyncSet(key, value) {
      await host.asyncModuleCall("kv.set", { key, value: value === undefined ? null : value });
    },
  };
  Object.defineProperty(globalThis, "kv", { value: Object.freeze(kv), writable: true, configurable: true });
})
