/**
 * ESLint rule `agentd/plugin-imports`: a plugin (any file under a `plugins/<name>/` folder) imports
 * of the kernel only `daemon/plugin-api` and `client/*`, and never another plugin's files. Paths are
 * resolved, so `../x` from a nested folder is judged by where it lands, not by how it is spelled.
 */
import path from 'node:path';

/** The plugin folder a file belongs to: `{root, name}` for `<root>/plugins/<name>/...`, else null. */
function pluginOf(file) {
  const parts = file.split(path.sep);
  const i = parts.lastIndexOf('plugins');
  if (i < 0 || i + 2 >= parts.length) return null;
  return {
    root: parts.slice(0, i).join(path.sep) || path.sep,
    dir: parts.slice(0, i + 2).join(path.sep),
    name: parts[i + 1],
  };
}

/** @type {import('eslint').Rule.RuleModule} */
export const pluginImports = {
  meta: {
    type: 'problem',
    docs: {
      description: 'Plugins import the kernel only through daemon/plugin-api and client/, and never another plugin.',
    },
    schema: [{ type: 'object', properties: { repoRoot: { type: 'string' } }, additionalProperties: false }],
    messages: {
      kernel: 'A plugin imports the kernel only through daemon/plugin-api.js (and client/*): "{{spec}}".',
      otherPlugin:
        'A plugin never imports another plugin ("{{spec}}" is in plugin "{{other}}"); talk to it through events.',
    },
  },
  create(context) {
    const file = context.filename;
    const mine = pluginOf(file);
    if (!mine) return {};
    const repoRoot = context.options[0]?.repoRoot ?? process.cwd();
    const daemonDir = path.join(repoRoot, 'daemon');
    const check = (node, spec) => {
      if (typeof spec !== 'string' || !spec.startsWith('.')) return;
      const target = path.resolve(path.dirname(file), spec);
      if (target === daemonDir || target.startsWith(daemonDir + path.sep)) {
        const rel = path.relative(daemonDir, target).replace(/\.(js|ts)$/, '');
        if (rel !== 'plugin-api') context.report({ node, messageId: 'kernel', data: { spec } });
        return;
      }
      const theirs = pluginOf(target + (path.extname(target) ? '' : path.sep + 'x'));
      if (theirs && theirs.dir !== mine.dir && theirs.root === mine.root)
        context.report({ node, messageId: 'otherPlugin', data: { spec, other: theirs.name } });
    };
    return {
      ImportDeclaration: (node) => check(node.source, node.source.value),
      ExportNamedDeclaration: (node) => node.source && check(node.source, node.source.value),
      ExportAllDeclaration: (node) => check(node.source, node.source.value),
      ImportExpression: (node) => node.source.type === 'Literal' && check(node.source, node.source.value),
    };
  },
};
