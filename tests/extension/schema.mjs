// The job settings' schema as build.py ships it (lib/job_settings.json), made by
// pycore/settings.py: the node tests run against the real one, never a copy.
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const REPO = fileURLToPath(new URL('../../', import.meta.url));

export const schema = JSON.parse(
  execFileSync(process.env.PYTHON || 'python3', ['-m', 'pycore.settings'], { cwd: REPO, encoding: 'utf8' }),
);
