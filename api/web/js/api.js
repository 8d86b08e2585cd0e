// Every call to the HTTP API goes through `request`: the bearer token, JSON both ways, and
// problem+json answers turned into an `ApiError` whose message a person can read.
import { currentToken, setToken } from "./session.js";

export class ApiError extends Error {
  constructor(status, problem) {
    const fields = (problem.errors || []).map((e) => `${e.field}: ${e.message}`);
    super([problem.detail || problem.title || `HTTP ${status}`, ...fields].join("; "));
    this.status = status;
    this.problem = problem;
  }
}

export async function request(method, path, { body, idempotencyKey, signal } = {}) {
  const headers = { Accept: "application/json" };
  const token = currentToken();
  if (token) headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (idempotencyKey) headers["Idempotency-Key"] = idempotencyKey;
  const response = await fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    signal,
    cache: "no-store",
  });
  if (response.status === 204) return null;
  const data = await response.json().catch(() => ({}));
  if (!response.ok) {
    // An expired or revoked token: back to the sign-in page (which the token's listeners show).
    if (response.status === 401 && token && !path.startsWith("/v1/auth/login")) setToken(null);
    throw new ApiError(response.status, data);
  }
  return data;
}

export const get = (path, options) => request("GET", path, options);
export const post = (path, body, options) => request("POST", path, { ...options, body });

// A command with a fresh Idempotency-Key, so that a retry of this very submission is harmless.
export const submitCommand = (path, body) => post(path, body, { idempotencyKey: crypto.randomUUID() });
