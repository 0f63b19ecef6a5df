// `greentic:secrets-store/secrets-store@1.0.0` for composed flows under V8:
// the value of `GREENTIC_SECRET_<KEY>` (as host-shim reads it), or none.
// jco maps the composed app's import here (`jco transpile --map`).
export function get(key) {
  const name = 'GREENTIC_SECRET_' + key.replace(/[^A-Za-z0-9]/g, '_').toUpperCase();
  const value = process.env[name];
  return value === undefined ? undefined : new TextEncoder().encode(value);
}
