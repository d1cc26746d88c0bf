export { leadWorkflow } from './lead.js';
export { baselineWorkflow } from './baseline.js';
export { webhookDeliveryWorkflow } from './webhooks.js';
