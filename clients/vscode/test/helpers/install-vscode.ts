/** Import first: makes `require("vscode")` return the stub for everything loaded afterwards. */

import Module = require("node:module");

import { vscode } from "./vscode-stub";

type Loader = (request: string, parent: unknown, isMain: boolean) => unknown;
const moduleWithLoader = Module as unknown as { _load: Loader };
const original = moduleWithLoader._load;
moduleWithLoader._load = function load(this: unknown, request: string, parent: unknown, isMain: boolean): unknown {
  if (request === "vscode") {
    return vscode;
  }
  return original.call(this, request, parent, isMain);
};
