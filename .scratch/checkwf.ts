import fs from 'node:fs';
import YAML from 'yaml';
import { checkDefinition } from '../plugins/workflow/validate.ts';
for (const f of fs.readdirSync('/work/wt/workflow/workflows')) {
  const raw = YAML.parse(fs.readFileSync('/work/wt/workflow/workflows/' + f, 'utf8'));
  const r = checkDefinition({ ...raw, name: raw.name ?? f.replace(/\.yaml$/, '') });
  console.log(f, r.ok ? `ok ${r.definition.steps.length} steps` : JSON.stringify(r.issues, null, 1));
}
