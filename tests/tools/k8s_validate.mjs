// Validates Kubernetes objects against the API schemas, with the validators
// that the npm package kubernetes-models generates from Kubernetes' OpenAPI.
//
//   node k8s_validate.mjs MODELS_DIR < objects.json
//
// objects.json: a JSON array of objects (e.g. a rendered chart, converted
// from YAML). One line per object on stdout ("ok Kind/name" or "FAIL ...
// why"); exit 1 if any object fails or has a kind the schemas do not know.
// The schemas allow unknown fields (as the API server's non-strict decoding
// does); a misspelled field is caught by the golden files instead.
import { readFileSync, existsSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";

const models = join(process.argv[2], "node_modules", "kubernetes-models");
const objects = JSON.parse(readFileSync(0, "utf8"));
let failed = 0;
for (const obj of objects) {
  const what = `${obj?.kind}/${obj?.metadata?.name}`;
  const [group, version] = String(obj?.apiVersion).includes("/")
    ? obj.apiVersion.split("/")
    : [null, obj?.apiVersion];
  const file = join(models, ...(group ? [group] : []), String(version), `${obj?.kind}.js`);
  if (!obj?.kind || !existsSync(file)) {
    console.log(`FAIL ${what}: no schema for ${obj?.apiVersion} ${obj?.kind}`);
    failed++;
    continue;
  }
  const mod = await import(pathToFileURL(file).href);
  const Model = mod[obj.kind];
  try {
    new Model(obj).validate();
    console.log(`ok   ${what}`);
  } catch (e) {
    console.log(`FAIL ${what}: ${e.message}`);
    failed++;
  }
}
process.exit(failed ? 1 : 0);
