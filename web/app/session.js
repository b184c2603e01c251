// The API key of this browser tab: sessionStorage only (gone when the tab closes), never in a URL sent to a
// server. The local stack's link carries the key in the fragment (#key=…), which browsers never send.
const STORAGE_KEY = "tt.api_key";
const KEY_PATTERN = /^tt_[0-9A-Za-z]{48}$/;

export function isWellFormedKey(key) {
  return KEY_PATTERN.test(key);
}

export function storedKey() {
  return sessionStorage.getItem(STORAGE_KEY);
}

export function storeKey(key) {
  sessionStorage.setItem(STORAGE_KEY, key);
}

export function clearKey() {
  sessionStorage.removeItem(STORAGE_KEY);
}

// Takes a key from `#key=tt_…` and removes it from the address bar (and so from the history).
export function takeKeyFromFragment() {
  const match = location.hash.match(/^#key=([^&]*)$/);
  if (!match) return;
  const key = decodeURIComponent(match[1]);
  history.replaceState(null, "", location.pathname + location.search + "#/specs");
  if (isWellFormedKey(key)) storeKey(key);
}
