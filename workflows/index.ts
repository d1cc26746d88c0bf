export { leadWorkflow } from './lead.js';
export { routerWorkflow } from './router.js';
export { baselineWorkflow } from './baseline.js';
