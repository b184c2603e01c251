// The API client: finds the API's base URL (config.json, else same-origin /api/v1), sends the Bearer key and
// turns the product's error envelope into ApiError, whose message is the API's own sentence.
import { storedKey } from "./session.js";

let apiBase = null;

// The deployed site serves config.json = {"apiBase": "https://…/api/v1"}; the local stack serves none (404).
export async function loadConfig() {
  apiBase = `${location.origin}/api/v1`;
  try {
    const response = await fetch("./config.json", { cache: "no-store" });
    if (response.ok) {
      const config = await response.json();
      if (typeof config.apiBase === "string" && /^https?:\/\//.test(config.apiBase)) {
        apiBase = config.apiBase.replace(/\/+$/, "");
      }
    }
  } catch {
    // No config: same origin.
  }
  return apiBase;
}

export class ApiError extends Error {
  constructor(status, code, message, details = []) {
    super(message);
    this.status = status;
    this.code = code;
    this.details = details;
  }
}

// One request; resolves to the envelope ({data, meta}) or null for 204; rejects with ApiError.
export async function api(path, { method = "GET", body, key = storedKey(), headers = {} } = {}) {
  const init = { method, headers: { ...headers }, cache: "no-store" };
  if (key) init.headers.Authorization = `Bearer ${key}`;
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(apiBase + path, init);
  } catch {
    throw new ApiError(0, "connection_error", "The API cannot be reached. Is it running?");
  }
  if (response.status === 204) return null;
  let payload = null;
  try {
    payload = await response.json();
  } catch {
    throw new ApiError(response.status, "invalid_response", `The API answered ${response.status} without JSON.`);
  }
  if (!response.ok) {
    const error = payload?.error ?? {};
    throw new ApiError(response.status, error.code ?? "error", error.message ?? `HTTP ${response.status}`, error.details ?? []);
  }
  return { ...payload, etag: response.headers.get("ETag") };
}

// Every page of a list endpoint (lists are short here; the API caps a page at 100 rows).
export async function apiList(path) {
  const separator = path.includes("?") ? "&" : "?";
  const rows = [];
  for (let page = 1; ; page += 1) {
    const { data, meta } = await api(`${path}${separator}page=${page}&per_page=100`);
    rows.push(...data);
    if (!data.length || rows.length >= meta.total) return rows;
  }
}

// A PUT of bytes to a presigned URL, reporting progress (fetch cannot report upload progress).
export function uploadFile(url, file, headers, onProgress) {
  return new Promise((resolve, reject) => {
    const request = new XMLHttpRequest();
    request.open("PUT", url);
    for (const [name, value] of Object.entries(headers)) request.setRequestHeader(name, value);
    request.upload.onprogress = (event) => event.lengthComputable && onProgress(event.loaded, event.total);
    request.onload = () =>
      request.status < 300 ? resolve() : reject(new ApiError(request.status, "upload_failed", `The upload was refused (HTTP ${request.status}).`));
    request.onerror = () => reject(new ApiError(0, "upload_failed", "The upload could not reach the storage."));
    request.send(file);
  });
}
