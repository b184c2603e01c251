// The hash router: `#/runs/<id>?tab=…` → {parts: ["runs", "<id>"], query}. Pages are chosen in main.js.
import { useEffect, useState } from "./html.js";

export function parseHash(hash = location.hash) {
  const [path, search = ""] = hash.replace(/^#/, "").split("?");
  return { parts: path.split("/").filter(Boolean).map(decodeURIComponent), query: new URLSearchParams(search) };
}

export function navigate(path) {
  location.hash = path;
}

export function useRoute() {
  const [route, setRoute] = useState(parseHash());
  useEffect(() => {
    const update = () => setRoute(parseHash());
    addEventListener("hashchange", update);
    return () => removeEventListener("hashchange", update);
  }, []);
  return route;
}
