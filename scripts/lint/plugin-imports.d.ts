import type { Rule } from 'eslint';
export declare const pluginImports: Rule.RuleModule;
