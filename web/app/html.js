// The view layer: Preact's h bound to htm's tagged templates (no JSX, so no build step), and its hooks.
import { h, render, Fragment } from "../vendor/preact.js";
import htm from "../vendor/htm.js";

export { render, Fragment };
export { useState, useEffect, useRef, useMemo, useCallback } from "../vendor/preact-hooks.js";
export const html = htm.bind(h);
