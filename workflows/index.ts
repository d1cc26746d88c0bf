export { leadWorkflow } from './lead.js';
export { routerWorkflow } from './router.js';
