// The JSON API as the page calls it: relative URLs (the page may sit behind a path
// prefix) and the admin key from this tab's sessionStorage, sent as X-API-Key.
const STORED = "cbserve.adminKey";

export const apiKey = {
  get: () => sessionStorage.getItem(STORED),
  set: (key) => sessionStorage.setItem(STORED, key),
  clear: () => sessionStorage.removeItem(STORED),
};

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;  // 0: no answer at all
    this.code = code;
  }
}

export async function get(path) {
  let res;
  try {
    res = await fetch(path, { headers: { "X-API-Key": apiKey.get() ?? "" }, cache: "no-store" });
  } catch (err) {
    throw new ApiError(0, "unreachable", `the service does not answer (${err.message})`);
  }
  const body = await res.json().catch(() => null);
  if (!res.ok) {
    const error = body?.error ?? {};
    throw new ApiError(res.status, error.code ?? `http_${res.status}`, error.message ?? res.statusText);
  }
  return body;
}

// Everything the page shows for one loop and window, fetched side by side.
export async function loopData(loop, window) {
  const base = `v1/loops/${encodeURIComponent(loop)}`;
  const [health, models, challengers, audit] = await Promise.all([
    get(`${base}/health?window=${window}`), get(`${base}/models`),
    get(`${base}/challengers`), get(`${base}/audit?count=10`),
  ]);
  // the serving version's weights and a recent decision explained (none before a version)
  // (its failure shows in its own sections, never in place of the rest)
  const explain = models.serving
    ? await get(`${base}/models/${models.serving}/explain?top=10&decisions=200`)
      .catch((err) => ({ version: models.serving, summary: null, recent: null, reason: err.message }))
    : null;
  return { health, models, challengers, audit: audit.entries, explain };
}
