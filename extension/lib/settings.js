// The job settings (stems, format, preset, clip): their allowed values, labels and
// defaults come from pycore/settings.py, which build.py writes into the bundle as
// lib/job_settings.json. Nothing here lists a value: the popup draws its menus from
// the schema, and the service worker checks every job against it once, where the
// job arrives (normalize), then passes the settings on whole.

const SCHEMA_URL = new URL('./job_settings.json', import.meta.url);

let loading = null;

// The schema, fetched once per context.
export function loadSchema() {
  if (!loading) {
    loading = fetch(SCHEMA_URL)
      .then((r) => {
        if (!r.ok) throw new Error(`the job settings' schema is missing from the bundle (HTTP ${r.status})`);
        return r.json();
      })
      .catch((e) => {
        loading = null;
        throw e;
      });
  }
  return loading;
}

export class SettingsError extends Error {}

export function defaults(schema) {
  return Object.fromEntries(Object.entries(schema).map(([name, spec]) => [name, spec.default]));
}

// Every setting, its default where `given` has none; an unknown setting or value is
// refused in words (the same rule as pycore.settings.normalize).
export function normalize(schema, given = {}) {
  if (given === null || typeof given !== 'object' || Array.isArray(given)) {
    throw new SettingsError('the job settings must be an object');
  }
  const out = defaults(schema);
  for (const [name, value] of Object.entries(given)) {
    const spec = schema[name];
    if (!spec) throw new SettingsError(`unknown setting '${name}'; the settings are ${Object.keys(schema).join(', ')}`);
    if (value === undefined || value === null) continue;
    const values = spec.choices.map((c) => c.value);
    if (!values.includes(value)) {
      throw new SettingsError(`${name} must be one of ${values.join(', ')}, not '${value}'`);
    }
    out[name] = value;
  }
  return out;
}

// "four stems, wav16, balanced, rescale" in the schema's own words, for a job's tooltip;
// an off/on switch or an engine setting (the GPU) is named when not at its default (a switch
// turned on by its label alone);
// the extension's own settings (the library's size) never.
export function describe(schema, settings) {
  const label = (name, spec) => spec.choices.find((c) => c.value === settings?.[name])?.label ?? settings?.[name] ?? '?';
  return Object.entries(schema)
    .filter(([, spec]) => !spec.global)
    .filter(([name, spec]) => (spec.switch || spec.extension ? (settings?.[name] ?? spec.default) !== spec.default : true))
    .map(([name, spec]) => (spec.switch && settings?.[name] === 'on' ? spec.label : spec.switch || spec.extension ? `${spec.label}: ${label(name, spec)}` : label(name, spec)))
    .join(', ');
}
