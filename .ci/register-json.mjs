// Node 20 refuses `import x from './file.json'` without an import attribute, which @actions/workflow-parser
// does. This hook adds the attribute (Node 22 no longer needs it). Use: node --import ./.ci/register-json.mjs
import { register } from 'node:module';

const hook = `export async function resolve(specifier, context, next) {
  const result = await next(specifier, context);
  return result.url.endsWith('.json') ? { ...result, importAttributes: { type: 'json' } } : result;
}`;
register(`data:text/javascript,${encodeURIComponent(hook)}`);
