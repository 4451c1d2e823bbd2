// How the page writes numbers; "—" for a figure the service does not have (null).
const DASH = "—";
const missing = (x) => x === null || x === undefined;

export const int = (x) => (missing(x) ? DASH : String(x));
export const num = (x, digits = 4) => (missing(x) ? DASH : x.toFixed(digits));
export const pct = (x) => (missing(x) ? DASH : `${(100 * x).toFixed(1)} %`);
export const ci = (mean, low, high) =>
  missing(mean) ? DASH : missing(low) ? num(mean) : `${num(mean)} [${num(low)}, ${num(high)}]`;
export const bool = (x) => (missing(x) ? DASH : x ? "yes" : "no");
export const ms = (x) => (missing(x) ? DASH : `${num(x.mean, 2)} / ${num(x.max, 2)} ms`);

export function age(seconds) {
  if (missing(seconds)) return DASH;
  if (seconds < 120) return `${Math.round(seconds)} s`;
  if (seconds < 7200) return `${Math.round(seconds / 60)} min`;
  return `${(seconds / 3600).toFixed(1)} h`;
}

export function utc(unixSeconds) {
  if (missing(unixSeconds)) return DASH;
  return new Date(unixSeconds * 1000).toISOString().slice(0, 19).replace("T", " ");
}

// A health figure by its dotted path ("reward.mean"), and its text by data-format.
export const pick = (obj, path) => path.split(".").reduce((o, k) => (missing(o) ? o : o[k]), obj);

export const byFormat = {
  int, num: (x) => num(x), pct, bool, ms, age,
  ci: (r) => (missing(r) ? DASH : ci(r.mean, r.low, r.high)),
};
