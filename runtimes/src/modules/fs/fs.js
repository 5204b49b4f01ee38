// fs: files on the directories mounted into this session (`--mount`).
// Evaluated once when the instance starts, with the glue's private `host`
// object (moduleCall / asyncModuleCall), which user code never sees.
(function (host) {
  "use strict";
  function absolute(path) {
    if (typeof path !== "string") throw new TypeError("path must be a string");
    return path.startsWith("/") ? path : "/" + path;
  }
  const fs = {
    readText(path) {
      return host.moduleCall("fs.read_text", { path: absolute(path) });
    },
    writeText(path, text) {
      if (typeof text !== "string") throw new TypeError("text must be a string");
      host.moduleCall("fs.write_text", { path: absolute(path), text });
    },
    readJson(path) {
      return JSON.parse(fs.readText(path));
    },
    writeJson(path, value) {
      fs.writeText(path, JSON.stringify(value));
    },
    listdir(path) {
      return host.moduleCall("fs.listdir", { path: absolute(path) });
    },
    exists(path) {
      return host.moduleCall("fs.exists", { path: absolute(path) });
    },
    /** `{size, isDir, isFile, mtime}` (mtime in seconds since the epoch). */
    stat(path) {
      return host.moduleCall("fs.stat", { path: absolute(path) });
    },
    mkdir(path, options = {}) {
      host.moduleCall("fs.mkdir", { path: absolute(path), parents: Boolean(options.parents) });
    },
    remove(path) {
      host.moduleCall("fs.remove", { path: absolute(path) });
    },
  };
  Object.defineProperty(globalThis, "fs", { value: Object.freeze(fs), writable: true, configurable: true });
})
