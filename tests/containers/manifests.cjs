// Offline checks of Kubernetes manifests, with no cluster: every document is
// validated against the Kubernetes OpenAPI schemas (kubernetes-models: wrong
// types and missing required fields) and for unknown fields, then every
// pod template against the rules the deploy/ examples promise: non-root, a
// read-only root file system, no privilege escalation, all capabilities
// dropped, resources set, and for the cmig runner a termination message
// policy and a database URL that comes from a mounted file.
//
//   CMIG_NODE_MODULES=DIR node manifests.cjs SUITE FILE...
//
// Prints "ok - SUITE: ..." / "not ok - SUITE: ..." lines; exits 1 on any
// failure. kubernetes-models and yaml are loaded from CMIG_NODE_MODULES.
'use strict';

const fs = require('fs');
const path = require('path');
const { createRequire } = require('module');

const modules = process.env.CMIG_NODE_MODULES;
if (!modules) {
    console.error('manifests.cjs: set CMIG_NODE_MODULES to the node_modules directory');
    process.exit(2);
}
const load = createRequire(path.join(path.resolve(modules), 'noop.js'));
const YAML = load('yaml');

const [suite, ...files] = process.argv.slice(2);
let failed = 0;
const ok = (what) => console.log(`ok - ${suite}: ${what}`);
const notOk = (what, why) => {
    failed++;
    console.log(`not ok - ${suite}: ${what}`);
    for (const line of String(why).split('\n').slice(0, 20))
        console.log(`#   ${line}`);
};

// The schemas kubernetes-models compiles accept fields they do not know, so
// a misspelt field would pass unseen. Its TypeScript declarations list every
// field of every type: walk the document along them and report the rest.
const declCache = new Map();

function declResolve(fromFile, spec) {
    return spec.startsWith('.') ? path.join(path.dirname(fromFile), spec + '.d.ts')
                                : path.join(path.resolve(modules), spec + '.d.ts');
}

// The fields of the first interface a .d.ts file exports, each with its
// type text; null for a file that declares a plain type (string, number...).
function declLoad(file) {
    if (declCache.has(file))
        return declCache.get(file);
    let decl = null;
    const text = fs.readFileSync(file, 'utf8');
    const imports = new Map();
    for (const m of text.matchAll(/^import \{ ([\w, ]+) \} from "([^"]+)";$/gm))
        for (const name of m[1].split(', '))
            imports.set(name, declResolve(file, m[2]));
    const body = /^export interface \w+(?: extends [\w, ]+)? \{\n([\s\S]*?)^\}$/m.exec(text);
    if (body) {
        decl = { file, imports, fields: new Map(), open: false };
        const lines = body[1].split('\n');
        for (let i = 0; i < lines.length; i++) {
            const f = /^ {4}"([^"]+)"\??: (.*);?$/.exec(lines[i]);
            if (f) {
                let type = f[2].replace(/;$/, '');
                if (type === '{') // a map: its value type is on the next line
                    type = 'map:' + /\]: (.*);$/.exec(lines[++i])[1];
                decl.fields.set(f[1], type);
            } else if (/^ {4}\[key: string\]/.test(lines[i])) {
                decl.open = true;
            }
        }
    }
    declCache.set(file, decl);
    return decl;
}

function unknownFields(value, type, decl, where, out) {
    if (value === null || typeof value !== 'object')
        return;
    let m;
    if ((m = /^Array<(.*)>$/.exec(type))) {
        if (Array.isArray(value))
            value.forEach((v, i) => unknownFields(v, m[1], decl, `${where}[${i}]`, out));
        return;
    }
    if (type.startsWith('map:')) {
        for (const [k, v] of Object.entries(value))
            unknownFields(v, type.slice(4), decl, `${where}.${k}`, out);
        return;
    }
    const file = decl ? decl.imports.get(type) : type;
    const next = file && declLoad(file);
    if (!next || next.open || Array.isArray(value))
        return;
    for (const [k, v] of Object.entries(value)) {
        if (!next.fields.has(k))
            out.push(`${where}.${k}: unknown field`);
        else
            unknownFields(v, next.fields.get(k), next, `${where}.${k}`, out);
    }
}

// apiVersion and kind to the kubernetes-models class that validates them.
function modelFor(apiVersion, kind) {
    if (!/^[a-z0-9.]*\/?v[0-9a-z]+$/.test(apiVersion || '') || !/^[A-Za-z]+$/.test(kind || ''))
        return null;
    try {
        return load(`kubernetes-models/${apiVersion}/${kind}`)[kind] || null;
    } catch (e) {
        return null;
    }
}

function podSpecOf(doc) {
    switch (doc.kind) {
    case 'Pod': return doc.spec;
    case 'Deployment': case 'StatefulSet': case 'DaemonSet': case 'ReplicaSet': case 'Job':
        return doc.spec && doc.spec.template && doc.spec.template.spec;
    case 'CronJob':
        return doc.spec && doc.spec.jobTemplate && doc.spec.jobTemplate.spec &&
            doc.spec.jobTemplate.spec.template && doc.spec.jobTemplate.spec.template.spec;
    default: return null;
    }
}

// Which volume of the pod holds FILE in container C, if any.
function volumeHolding(c, spec, file) {
    for (const m of c.volumeMounts || []) {
        const dir = m.mountPath.replace(/\/+$/, '');
        if (file.startsWith(dir + '/'))
            return (spec.volumes || []).find((v) => v.name === m.name) || null;
    }
    return null;
}

function envOf(c) {
    const env = {};
    for (const e of c.env || [])
        env[e.name] = e;
    return env;
}

function checkPod(where, spec, defined) {
    const problems = [];
    const podSec = spec.securityContext || {};
    const volumes = new Map((spec.volumes || []).map((v) => [v.name, v]));
    const all = [...(spec.initContainers || []), ...(spec.containers || [])];
    for (const c of all) {
        const sec = c.securityContext || {};
        const name = `container '${c.name}'`;
        if (!(sec.runAsNonRoot === true || (podSec.runAsNonRoot === true && sec.runAsNonRoot !== false)))
            problems.push(`${name}: runAsNonRoot is not true`);
        if (sec.readOnlyRootFilesystem !== true)
            problems.push(`${name}: readOnlyRootFilesystem is not true`);
        if (sec.allowPrivilegeEscalation !== false)
            problems.push(`${name}: allowPrivilegeEscalation is not false`);
        if (!(sec.capabilities && (sec.capabilities.drop || []).includes('ALL')))
            problems.push(`${name}: capabilities are not all dropped`);
        if (!(c.resources && c.resources.requests && c.resources.limits && c.resources.limits.memory))
            problems.push(`${name}: no resource requests and memory limit`);
        for (const m of c.volumeMounts || [])
            if (!volumes.has(m.name))
                problems.push(`${name}: mounts '${m.name}', which is not a volume of the pod`);
        if (!/cmig-runner/.test(c.image || ''))
            continue;
        // The runner's own contract.
        if (c.terminationMessagePolicy !== 'FallbackToLogsOnError')
            problems.push(`${name}: terminationMessagePolicy is not FallbackToLogsOnError`);
        const uid = sec.runAsUser !== undefined ? sec.runAsUser : podSec.runAsUser;
        if (uid !== 65532)
            problems.push(`${name}: does not run as uid 65532`);
        const env = envOf(c);
        for (const need of ['CMIG_BUNDLE', 'CMIG_TRUSTED_KEYS'])
            if (!env[need] || !env[need].value)
                problems.push(`${name}: ${need} is not set`);
        if (env.CMIG_BUNDLE && env.CMIG_BUNDLE.value && !volumeHolding(c, spec, env.CMIG_BUNDLE.value))
            problems.push(`${name}: CMIG_BUNDLE '${env.CMIG_BUNDLE.value}' is on no mounted volume`);
        if (env.CMIG_TRUSTED_KEYS && env.CMIG_TRUSTED_KEYS.value) {
            const v = volumeHolding(c, spec, env.CMIG_TRUSTED_KEYS.value + '/x.pub');
            if (!v || !v.configMap)
                problems.push(`${name}: CMIG_TRUSTED_KEYS is not a mounted ConfigMap`);
            else if (!defined.has(`ConfigMap/${v.configMap.name}`))
                problems.push(`${name}: ConfigMap '${v.configMap.name}' is defined in no file checked`);
        }
        const url = env.CMIG_DATABASE_URL;
        if (url && !(url.value || '').startsWith('sqlite:'))
            problems.push(`${name}: a database URL with a password belongs in a Secret file (CMIG_DATABASE_URL_FILE), not in CMIG_DATABASE_URL`);
        if (!url) {
            const f = env.CMIG_DATABASE_URL_FILE && env.CMIG_DATABASE_URL_FILE.value;
            const v = f && volumeHolding(c, spec, f);
            if (!v || !v.secret)
                problems.push(`${name}: CMIG_DATABASE_URL_FILE is not a file of a mounted Secret`);
            else if (v.secret.optional !== false)
                // podman kube play (4.3) needs it spelt out; Kubernetes' default is the same.
                problems.push(`${name}: the Secret volume '${v.name}' does not say optional: false`);
            else if (!defined.has(`Secret/${v.secret.secretName}`))
                problems.push(`${name}: Secret '${v.secret.secretName}' is defined in no file checked`);
        }
    }
    if (problems.length)
        notOk(`${where}: pod security and cmig runner rules`, problems.join('\n'));
    else
        ok(`${where}: pod security and cmig runner rules`);
}

const docs = [];
for (const file of files) {
    let parsed;
    try {
        parsed = YAML.parseAllDocuments(fs.readFileSync(file, 'utf8'));
    } catch (e) {
        notOk(`${file}: readable YAML`, e.message);
        continue;
    }
    parsed.forEach((d, i) => {
        if (d.errors.length) {
            notOk(`${file}: document ${i + 1} is valid YAML`, d.errors.map((e) => e.message).join('\n'));
            return;
        }
        const obj = d.toJS();
        if (obj !== null && obj !== undefined)
            docs.push({ file, obj });
    });
}
const defined = new Set(docs.map(({ obj }) => `${obj.kind}/${obj.metadata && obj.metadata.name}`));

for (const { file, obj } of docs) {
    const where = `${file}: ${obj.kind} '${obj.metadata && obj.metadata.name}'`;
    const Model = modelFor(obj.apiVersion, obj.kind);
    if (!Model) {
        notOk(`${where}: schema`, `no Kubernetes schema for apiVersion '${obj.apiVersion}' kind '${obj.kind}'`);
        continue;
    }
    const problems = [];
    try {
        new Model(obj).validate();
    } catch (e) {
        problems.push(e.message);
    }
    unknownFields(obj, load.resolve(`kubernetes-models/${obj.apiVersion}/${obj.kind}`)
        .replace(/\.js$/, '.d.ts'), null, obj.kind, problems);
    if (problems.length)
        notOk(`${where}: schema`, problems.join('\n'));
    else
        ok(`${where}: schema`);
    const spec = podSpecOf(obj);
    if (spec)
        checkPod(where, spec, defined);
}
if (!docs.length)
    notOk('manifests', 'no document found');
process.exit(failed ? 1 : 0);
