{{/*
drupe.agentKey: (list $ node) -> the node's key in object names (agent-<key>): values
nodes[].key, else the one in the agent's endpoint host in values.drupe.config
(http://<deployment>-drupe-agent-<key>:<port>), so Services always match the endpoints.
*/}}
{{- define "drupe.agentKey" -}}
{{- $root := index . 0 -}}
{{- $node := index . 1 -}}
{{- if $node.key -}}
{{- $node.key -}}
{{- else -}}
{{- $url := dig "endpoints" "agents" $node.name "" ($root.Values.drupe.config | default dict) -}}
{{- $host := (urlParse (toString $url)).hostname -}}
{{- $prefix := printf "%s-drupe-agent-" $root.Values.deployment -}}
{{- if not (hasPrefix $prefix $host) -}}
{{- fail (printf "node %q has no key and values.drupe.config.endpoints.agents[%q] (%q) is not http://%s<key>:<port>" $node.name $node.name $url $prefix) -}}
{{- end -}}
{{- trimPrefix $prefix $host -}}
{{- end -}}
{{- end -}}

{{/*
drupe.checkPublish: DRUPE home must publish into the ConfigMap this chart makes (and its
Role allows): values.drupe.config.publish = {kind: configmap, name: <deployment>-drupe-profile,
namespace: <release namespace>, key: profile.json}. A "file" publisher is left alone here
(the chart cannot tell a test render from a deploy) but the deploy would wait in vain.
*/}}
{{- define "drupe.checkPublish" -}}
{{- $pub := dig "publish" dict (.Values.drupe.config | default dict) -}}
{{- if eq (toString (dig "kind" "" $pub)) "configmap" -}}
{{- $want := include "jupiter.name" (list . "profile") -}}
{{- if or (ne (toString $pub.name) $want) (ne (toString $pub.namespace) .Release.Namespace) (ne (toString (dig "key" "profile.json" $pub)) "profile.json") -}}
{{- fail (printf "values.drupe.config.publish is %s but the chart makes ConfigMap %s/%s (key profile.json) and only lets DRUPE home write that one" (toJson $pub) .Release.Namespace $want) -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/*
drupe.execWaitScript: the execution profiler Job's init container (the image's python).
argv: CONFIG POLL_SECONDS. Polls DRUPE home's /status (endpoints.home of the config, with
the token of token_file / $JUPITER_TOKEN_FILE) until the profile is complete, printing each
change of state; exits 1 at once when home rejects the token (waiting cannot fix that).
The Job's activeDeadlineSeconds bounds the wait. Tasks are profiled only after the network
profile is complete, as on the testbed, so probes and task runs do not share a node's CPU.
*/}}
{{- define "drupe.execWaitScript" -}}
import json, os, sys, time, urllib.error, urllib.request
config, poll = sys.argv[1], float(sys.argv[2])
try:
    with open(config, encoding="utf-8") as f:
        cfg = json.load(f)
    url = cfg["endpoints"]["home"].rstrip("/") + "/status"
    token_file = cfg.get("token_file") or os.environ["JUPITER_TOKEN_FILE"]
    with open(token_file, encoding="utf-8") as f:
        token = f.read().strip()
except (OSError, ValueError, KeyError) as exc:
    print("[drupe exec] cannot read the DRUPE config/token: %s: %s" % (type(exc).__name__, exc),
          flush=True)
    sys.exit(2)
last = None
while True:
    req = urllib.request.Request(url, headers={"Authorization": "Bearer " + token})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            status = json.load(resp)
        if status.get("complete") is True:
            print("[drupe exec] DRUPE home", url, "reports a complete profile", flush=True)
            sys.exit(0)
        state = "profile not complete yet (links %s/%s)" % (status.get("done"), status.get("total"))
    except urllib.error.HTTPError as exc:
        if exc.code in (401, 403):
            print("[drupe exec] DRUPE home", url, "rejected the token (HTTP %d): the Job and home"
                  " must mount the same token Secret" % exc.code, flush=True)
            sys.exit(1)
        state = "HTTP %d" % exc.code
    except (OSError, ValueError) as exc:
        state = "unreachable (%s)" % exc
    if state != last:
        print("[drupe exec] waiting for DRUPE home", url + ":", state, flush=True)
        last = state
    time.sleep(poll)
{{- end -}}

{{/*
drupe.execNodes: values.nodes[] the execution profiler runs on: execProfiler.nodes (names)
or, when empty, every node. Unknown names fail the render. Output: JSON list of nodes.
*/}}
{{- define "drupe.execNodes" -}}
{{- $want := .Values.execProfiler.nodes | default list -}}
{{- $known := list -}}
{{- range .Values.nodes }}{{ $known = append $known .name }}{{ end -}}
{{- range $want -}}
{{- if not (has . $known) -}}
{{- fail (printf "values.execProfiler.nodes: %q is not in values.nodes (known: %s)" . (join ", " $known)) -}}
{{- end -}}
{{- end -}}
{{- $out := list -}}
{{- range .Values.nodes -}}
{{- if or (not $want) (has .name $want) }}{{ $out = append $out . }}{{ end -}}
{{- end -}}
{{- toJson $out -}}
{{- end -}}

{{/*
drupe.execJobSpec: (dict "root" $ "node" <values.nodes[] entry> "key" <node key>) -> the
spec of the execution profiler Job of one node: the app image runs `jupiter drupe exec` on
that node (nodeSelector kubernetes.io/hostname) and POSTs the result to DRUPE home.
*/}}
{{- define "drupe.execJobSpec" -}}
{{- $root := .root -}}
{{- $ep := $root.Values.execProfiler -}}
{{- $ctx := dict "root" $root "component" "drupe-exec" "extra" (dict "jupiter.io/node" .key) -}}
{{- $args := list "drupe" "exec" "--app" $ep.appDir "--node" .node.name
  "--config" "/etc/jupiter/config.json" "--post"
  "--out" (printf "/var/lib/jupiter/exec/%s.json" .node.name)
  "--repeat" (toString (int $ep.repeat)) "--idle" (toString $ep.idleSeconds) -}}
{{- if $ep.onlyMissing }}{{ $args = append $args "--only-missing" }}{{ end -}}
{{- if $ep.input }}{{ $args = concat $args (list "--input" $ep.input) }}{{ end -}}
backoffLimit: {{ int $ep.backoffLimit }}
activeDeadlineSeconds: {{ int $ep.activeDeadlineSeconds }}
ttlSecondsAfterFinished: {{ int $ep.ttlSecondsAfterFinished }}
template:
  metadata:
    labels:
      {{- include "jupiter.labels" $ctx | nindent 6 }}
    annotations:
      {{- include "jupiter.podAnnotations" (dict "config" $root.Values.drupe.config) | nindent 6 }}
  spec:
    restartPolicy: Never
    automountServiceAccountToken: false
    enableServiceLinks: false
    nodeSelector:
      kubernetes.io/hostname: {{ .node.hostname | quote }}
    {{- with $root.Values.tolerations }}
    tolerations:
      {{- toYaml . | nindent 6 }}
    {{- end }}
    {{- with $root.Values.priorityClassName }}
    priorityClassName: {{ . }}
    {{- end }}
    {{- with $root.Values.imagePullSecrets }}
    imagePullSecrets:
      {{- range . }}
      - name: {{ . }}
      {{- end }}
    {{- end }}
    securityContext:
      {{- include "jupiter.podSecurityContext" . | nindent 6 }}
    initContainers:
      - name: wait-home
        image: {{ include "jupiter.image" $root | quote }}
        imagePullPolicy: {{ $root.Values.image.pullPolicy }}
        command: ["python", "-c"]
        args:
          - {{ include "drupe.execWaitScript" . | quote }}
          - /etc/jupiter/config.json
          - {{ int $ep.pollSeconds | quote }}
        env:
          - name: JUPITER_TOKEN_FILE
            value: /var/run/jupiter/token
        resources:
          requests:
            cpu: 10m
            memory: 32Mi
          limits:
            cpu: 200m
            memory: 64Mi
        securityContext:
          {{- include "jupiter.containerSecurityContext" . | nindent 10 }}
        volumeMounts:
          - name: config
            mountPath: /etc/jupiter
            readOnly: true
          - name: token
            mountPath: /var/run/jupiter
            readOnly: true
    containers:
      - name: exec
        image: {{ include "jupiter.image" $root | quote }}
        imagePullPolicy: {{ $root.Values.image.pullPolicy }}
        args:
          {{- toYaml $args | nindent 10 }}
        env:
          - name: JUPITER_TOKEN_FILE
            value: /var/run/jupiter/token
          - name: JUPITER_NAMESPACE
            valueFrom:
              fieldRef:
                fieldPath: metadata.namespace
          - name: JUPITER_K8S_NODE
            valueFrom:
              fieldRef:
                fieldPath: spec.nodeName
          - name: HOME
            value: /var/lib/jupiter
          - name: TMPDIR
            value: /tmp
          - name: PYTHONUNBUFFERED
            value: "1"
          - name: PYTHONDONTWRITEBYTECODE
            value: "1"
        resources:
          {{- include "jupiter.resources" (dict "defaults" $root.Values.resources.exec "override" dict) | nindent 10 }}
        securityContext:
          {{- include "jupiter.containerSecurityContext" . | nindent 10 }}
        volumeMounts:
          - name: config
            mountPath: /etc/jupiter
            readOnly: true
          - name: token
            mountPath: /var/run/jupiter
            readOnly: true
          - name: state
            mountPath: /var/lib/jupiter
          - name: tmp
            mountPath: /tmp
    volumes:
      - name: config
        configMap:
          name: {{ include "jupiter.name" (list $root "config") }}
          items:
            - key: config.json
              path: config.json
      - name: token
        secret:
          secretName: {{ include "jupiter.tokenSecretName" $root }}
          defaultMode: 288  # 0440: owner root, group fsGroup (10001) may read
          items:
            - key: token
              path: token
      - name: state
        emptyDir:
          sizeLimit: {{ $root.Values.state.sizeLimit }}
      - name: tmp
        emptyDir:
          sizeLimit: {{ $root.Values.tmpSizeLimit }}
{{- end -}}
