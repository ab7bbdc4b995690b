// Turns the deploy/ manifests into what `podman kube play` (podman 4.3, as
// Debian 12 ships it) can run on a test machine, changing as little as
// possible: the pod specs are played as written except for
//  - image names: the registry names become the images the test built;
//  - data: the test's trusted key and database URL replace the examples;
//  - restartPolicy: Never. podman 4.3 re-runs init containers forever under
//    Always and retries them under OnFailure; Never makes a failed
//    initContainer fail the play at once (fixed in podman 4.6);
//  - a Job is played as the Pod its template describes (no Job support);
//  - Secrets are not in the output: podman reads them from its own secret
//    store, so each is written to SECRET_DIR/NAME.json for
//    `podman secret create`. podman 4.3 ignores stringData and writes the
//    values of `data` to the files without decoding them, so the plain
//    values go there;
//  - optionally a host file mounted at /dev/termination-log in the cmig
//    runner containers, as the kubelet does (podman does not);
//  - podman ignores fsGroup: claims get podman's annotations that make the
//    volume belong to the pod's fsGroup instead.
//
//   CMIG_NODE_MODULES=DIR node kube-prep.cjs SPEC.json FILE... > OUT.yaml
//
// SPEC: {"images": {FROM: TO}, "configMaps": {NAME: {KEY: VALUE}},
//        "secrets": {NAME: {KEY: VALUE}}, "secretDir": DIR,
//        "terminationLog": HOSTFILE, "volumeOwner": UID}
'use strict';

const fs = require('fs');
const path = require('path');
const { createRequire } = require('module');

const load = createRequire(path.join(path.resolve(process.env.CMIG_NODE_MODULES || '.'), 'noop.js'));
const YAML = load('yaml');

const [specFile, ...files] = process.argv.slice(2);
const spec = JSON.parse(fs.readFileSync(specFile, 'utf8'));

function fixPod(pod) {
    pod.restartPolicy = 'Never';
    for (const c of [...(pod.initContainers || []), ...(pod.containers || [])]) {
        if (spec.images && spec.images[c.image])
            c.image = spec.images[c.image];
        if (spec.terminationLog && /cmig-runner/.test(c.image)) {
            pod.volumes = pod.volumes || [];
            if (!pod.volumes.some((v) => v.name === 'termination-log'))
                pod.volumes.push({ name: 'termination-log',
                                   hostPath: { path: spec.terminationLog, type: 'File' } });
            c.volumeMounts = c.volumeMounts || [];
            c.volumeMounts.push({ name: 'termination-log', mountPath: '/dev/termination-log' });
        }
    }
}

const out = [];
for (const file of files) {
    for (const doc of YAML.parseAllDocuments(fs.readFileSync(file, 'utf8'))) {
        const obj = doc.toJS();
        if (!obj)
            continue;
        const name = obj.metadata && obj.metadata.name;
        if (obj.kind === 'Secret') {
            const data = { ...(obj.stringData || {}) };
            for (const [k, v] of Object.entries(obj.data || {}))
                data[k] = Buffer.from(v, 'base64').toString('utf8');
            Object.assign(data, (spec.secrets || {})[name] || {});
            fs.writeFileSync(path.join(spec.secretDir, `${name}.json`), JSON.stringify({
                apiVersion: 'v1', kind: 'Secret', metadata: { name }, data }));
            continue;
        }
        if (obj.kind === 'PersistentVolumeClaim' && spec.volumeOwner !== undefined) {
            obj.metadata.annotations = { ...(obj.metadata.annotations || {}),
                'volume.podman.io/uid': String(spec.volumeOwner),
                'volume.podman.io/gid': String(spec.volumeOwner) };
        }
        if (obj.kind === 'ConfigMap' && spec.configMaps && spec.configMaps[name])
            obj.data = spec.configMaps[name];
        if (obj.kind === 'Job') {
            const pod = { apiVersion: 'v1', kind: 'Pod', metadata: { name, labels: obj.spec.template.metadata && obj.spec.template.metadata.labels }, spec: obj.spec.template.spec };
            fixPod(pod.spec);
            out.push(pod);
            continue;
        }
        if (obj.kind === 'Deployment')
            fixPod(obj.spec.template.spec);
        if (obj.kind === 'Pod')
            fixPod(obj.spec);
        out.push(obj);
    }
}
process.stdout.write(out.map((o) => YAML.stringify(o)).join('---\n'));
