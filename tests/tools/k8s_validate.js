// Validates Kubernetes objects (a JSON array on argv[2]) against the API
// schemas shipped in the npm package kubernetes-models (ajv inside), so
// injected pods are checked by code that shares nothing with Lanyard.
// Exit 1 and one line per invalid object.
const fs = require('fs');
const models = {
  Pod: () => require('kubernetes-models/v1').Pod,
  List: null,
  Deployment: () => require('kubernetes-models/apps/v1').Deployment,
  StatefulSet: () => require('kubernetes-models/apps/v1').StatefulSet,
  DaemonSet: () => require('kubernetes-models/apps/v1').DaemonSet,
  ReplicaSet: () => require('kubernetes-models/apps/v1').ReplicaSet,
  Job: () => require('kubernetes-models/batch/v1').Job,
  CronJob: () => require('kubernetes-models/batch/v1').CronJob,
};
let bad = 0, checked = 0;
function check(o) {
  if (o.kind === 'List') return (o.items || []).forEach(check);
  const m = models[o.kind];
  if (!m) return;
  checked++;
  try {
    new (m())(o).validate();
  } catch (e) {
    bad++;
    console.log(`${o.kind}/${o.metadata && o.metadata.name}: ${e.message}`);
  }
}
JSON.parse(fs.readFileSync(process.argv[2])).forEach(check);
console.log(`${checked} checked, ${bad} invalid`);
process.exit(bad || !checked ? 1 : 0);
