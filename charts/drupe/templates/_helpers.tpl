{{/*
Shared helpers of the Jupiter charts (drupe, wave, circe).

This file is IDENTICAL in the three charts (tests/charts/test_helpers_identical.py checks
it); what differs between components lives in the other templates of each chart.

Object names follow one rule (docs/kubernetes.md, jupiter.values.service_name):
    <deployment>-<component>-<suffix>
component = the chart name (drupe | wave | circe); suffix = home | agent-<node key> |
<task key> | config | profile | test. Endpoints inside values.<component>.config are
computed by jupiter/values.py with the same rule; the charts never compute endpoints.
*/}}

{{/* jupiter.name: (list $ "suffix") -> "<deployment>-<chart>-<suffix>", checked. */}}
{{- define "jupiter.name" -}}
{{- $root := index . 0 -}}
{{- $name := printf "%s-%s-%s" $root.Values.deployment $root.Chart.Name (index . 1) -}}
{{- if or (gt (len $name) 63) (not (regexMatch "^[a-z]([-a-z0-9]*[a-z0-9])?$" $name)) -}}
{{- fail (printf "object name %q is not a DNS-1035 label of at most 63 characters: shorten the deployment name %q (jupiter_deployment) or the node/task key" $name $root.Values.deployment) -}}
{{- end -}}
{{- $name -}}
{{- end -}}

{{/* jupiter.selectorLabels: (dict "root" $ "component" "home" "extra" (dict ...)) */}}
{{- define "jupiter.selectorLabels" -}}
app.kubernetes.io/name: {{ .root.Chart.Name }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
jupiter.io/deployment: {{ .root.Values.deployment }}
{{- range $k, $v := (.extra | default dict) }}
{{ $k }}: {{ $v | quote }}
{{- end }}
{{- end -}}

{{/* jupiter.labels: selector labels + the recommended app.kubernetes.io/* labels. */}}
{{- define "jupiter.labels" -}}
{{ include "jupiter.selectorLabels" . }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/part-of: jupiter
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version | replace "+" "_" }}
{{- end -}}

{{/* jupiter.image: repository[:tag][@digest] */}}
{{- define "jupiter.image" -}}
{{- $img := .Values.image -}}
{{- $ref := $img.repository -}}
{{- if $img.tag }}{{ $ref = printf "%s:%s" $ref $img.tag }}{{ end -}}
{{- if $img.digest }}{{ $ref = printf "%s@%s" $ref $img.digest }}{{ end -}}
{{- $ref -}}
{{- end -}}

{{- define "jupiter.tokenSecretName" -}}
{{- .Values.token.secretName | default (printf "%s-token" .Values.deployment) -}}
{{- end -}}

{{/* jupiter.hostnameOf: (list $ "node name") -> the node's kubernetes.io/hostname. */}}
{{- define "jupiter.hostnameOf" -}}
{{- $root := index . 0 -}}
{{- $want := index . 1 -}}
{{- $found := "" -}}
{{- range $root.Values.nodes -}}
{{- if eq .name $want }}{{ $found = .hostname }}{{ end -}}
{{- end -}}
{{- if not $found -}}
{{- $names := list -}}
{{- range $root.Values.nodes }}{{ $names = append $names .name }}{{ end -}}
{{- fail (printf "node %q is not in values.nodes (known: %s): build all values from the same inventory" $want (join ", " $names)) -}}
{{- end -}}
{{- $found -}}
{{- end -}}

{{/*
jupiter.quantity: a Kubernetes quantity ("100m", "64Mi", "2", "1G") as a float, so two
quantities of one resource can be compared. Exponent forms ("1e3") are not supported.
*/}}
{{- define "jupiter.quantity" -}}
{{- $q := toString . -}}
{{- $num := regexFind "^[0-9]+(\\.[0-9]+)?" $q -}}
{{- $suffix := trimPrefix $num $q -}}
{{- $mult := dict "" 1.0 "m" 0.001 "k" 1000.0 "M" 1000000.0 "G" 1000000000.0 "T" 1000000000000.0 "Ki" 1024.0 "Mi" 1048576.0 "Gi" 1073741824.0 "Ti" 1099511627776.0 -}}
{{- if or (not $num) (not (hasKey $mult $suffix)) -}}
{{- fail (printf "resource quantity %q is not understood: use a number with an optional suffix m, k, M, G, T, Ki, Mi, Gi or Ti" $q) -}}
{{- end -}}
{{- mulf (float64 $num) (get $mult $suffix) -}}
{{- end -}}

{{/*
jupiter.resources: (dict "defaults" {...} "override" {...}) -> a ResourceRequirements.
override is either Kubernetes-shaped ({requests: {...}, limits: {...}}: merged over the
defaults as given) or flat ({cpu: "500m", memory: "256Mi"}, the app format's per-task
resources): those are requests, and a default limit below a request is raised to it.
*/}}
{{- define "jupiter.resources" -}}
{{- $r := deepCopy (.defaults | default dict) -}}
{{- $_ := set $r "requests" ($r.requests | default dict) -}}
{{- $_ := set $r "limits" ($r.limits | default dict) -}}
{{- $o := .override | default dict -}}
{{- if or (hasKey $o "requests") (hasKey $o "limits") -}}
{{- $r = mergeOverwrite $r (deepCopy (pick $o "requests" "limits")) -}}
{{- else -}}
{{- range $k := list "cpu" "memory" "ephemeral-storage" -}}
{{- if hasKey $o $k -}}
{{- $want := get $o $k -}}
{{- $_ := set $r.requests $k $want -}}
{{- if hasKey $r.limits $k -}}
{{- if gt (float64 (include "jupiter.quantity" $want)) (float64 (include "jupiter.quantity" (get $r.limits $k))) -}}
{{- $_ := set $r.limits $k $want -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- toYaml $r -}}
{{- end -}}

{{- define "jupiter.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 10001
runAsGroup: 10001
fsGroup: 10001
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{- define "jupiter.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
runAsNonRoot: true
runAsUser: 10001
runAsGroup: 10001
privileged: false
capabilities:
  drop: ["ALL"]
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/*
jupiter.container: (dict "root" $ "name" "home" "args" (list ...) "port" 7700
                         "resources" {...} "env" (list ...)) -> one container.
*/}}
{{- define "jupiter.container" -}}
{{- $root := .root -}}
{{- $p := $root.Values.probes -}}
name: {{ .name }}
image: {{ include "jupiter.image" $root | quote }}
imagePullPolicy: {{ $root.Values.image.pullPolicy }}
args:
  {{- toYaml .args | nindent 2 }}
  - --config
  - /etc/jupiter/config.json
  - --listen
  - {{ printf "%s:%d" $root.Values.listenHost (int .port) | quote }}
ports:
  - name: http
    containerPort: {{ int .port }}
    protocol: TCP
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
  {{- with .env }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
startupProbe:
  httpGet:
    path: /healthz
    port: http
  periodSeconds: {{ $p.startup.periodSeconds }}
  timeoutSeconds: {{ $p.startup.timeoutSeconds }}
  failureThreshold: {{ $p.startup.failureThreshold }}
livenessProbe:
  httpGet:
    path: /healthz
    port: http
  periodSeconds: {{ $p.liveness.periodSeconds }}
  timeoutSeconds: {{ $p.liveness.timeoutSeconds }}
  failureThreshold: {{ $p.liveness.failureThreshold }}
readinessProbe:
  httpGet:
    path: /ready
    port: http
  periodSeconds: {{ $p.readiness.periodSeconds }}
  timeoutSeconds: {{ $p.readiness.timeoutSeconds }}
  failureThreshold: {{ $p.readiness.failureThreshold }}
resources:
  {{- include "jupiter.resources" (dict "defaults" .resources.defaults "override" .resources.override) | nindent 2 }}
securityContext:
  {{- include "jupiter.containerSecurityContext" . | nindent 2 }}
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
{{- end -}}

{{/*
jupiter.podSpec: (dict "root" $ "container" <yaml string> "hostname" "edge1" "affinity" bool
                       "serviceAccount" "" "stateClaim" "") -> a PodSpec.
Placement: nodeSelector kubernetes.io/hostname (Deployments), or a required nodeAffinity
on kubernetes.io/hostname In [hostname] (DaemonSets: "affinity" true).
*/}}
{{- define "jupiter.podSpec" -}}
{{- $root := .root -}}
{{- if .serviceAccount }}
serviceAccountName: {{ .serviceAccount }}
automountServiceAccountToken: true
{{- else }}
automountServiceAccountToken: false
{{- end }}
enableServiceLinks: false
terminationGracePeriodSeconds: {{ $root.Values.terminationGracePeriodSeconds }}
{{- if .affinity }}
affinity:
  nodeAffinity:
    requiredDuringSchedulingIgnoredDuringExecution:
      nodeSelectorTerms:
        - matchExpressions:
            - key: kubernetes.io/hostname
              operator: In
              values:
                - {{ .hostname | quote }}
{{- else }}
nodeSelector:
  kubernetes.io/hostname: {{ .hostname | quote }}
{{- end }}
{{- with $root.Values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
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
  {{- include "jupiter.podSecurityContext" . | nindent 2 }}
containers:
  - {{ .container | trim | indent 4 | trim }}
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
    {{- if .stateClaim }}
    persistentVolumeClaim:
      claimName: {{ .stateClaim }}
    {{- else }}
    emptyDir:
      sizeLimit: {{ $root.Values.state.sizeLimit }}
    {{- end }}
  - name: tmp
    emptyDir:
      sizeLimit: {{ $root.Values.tmpSizeLimit }}
{{- end -}}

{{/* jupiter.podAnnotations: restart pods when their configuration changes. */}}
{{- define "jupiter.podAnnotations" -}}
checksum/config: {{ .config | toJson | sha256sum }}
{{- end -}}

{{/* jupiter.service: (dict "root" $ "name" ... "component" ... "extra" {...} "port" N) */}}
{{- define "jupiter.service" -}}
apiVersion: v1
kind: Service
metadata:
  name: {{ .name }}
  namespace: {{ .root.Release.Namespace }}
  labels:
    {{- include "jupiter.labels" . | nindent 4 }}
spec:
  type: ClusterIP
  selector:
    {{- include "jupiter.selectorLabels" . | nindent 4 }}
  ports:
    - name: http
      port: {{ int .port }}
      targetPort: http
      protocol: TCP
{{- end -}}

{{/* jupiter.stateClaim: (dict "root" $ "name" ... "component" ... "extra" {...}) */}}
{{- define "jupiter.stateClaim" -}}
apiVersion: v1
kind: PersistentVolumeClaim
metadata:
  name: {{ .name }}
  namespace: {{ .root.Release.Namespace }}
  labels:
    {{- include "jupiter.labels" . | nindent 4 }}
spec:
  accessModes: ["ReadWriteOnce"]
  {{- with .root.Values.state.storageClassName }}
  storageClassName: {{ . | quote }}
  {{- end }}
  resources:
    requests:
      storage: {{ .root.Values.state.size }}
{{- end -}}

{{/*
jupiter.testScript: the helm-test check, run with the runtime image's python. Arguments are
base URLs; each must answer /healthz and /ready with 200, /status with 401 without the
token and 200 with it.
*/}}
{{- define "jupiter.testScript" -}}
import sys, urllib.error, urllib.request
token = open("/var/run/jupiter/token", encoding="utf-8").read().strip()
failed = []
def get(url, auth):
    req = urllib.request.Request(url)
    if auth:
        req.add_header("Authorization", "Bearer " + token)
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError as exc:
        return repr(exc)
for base in sys.argv[1:]:
    for path, auth, want in (("/healthz", False, 200), ("/ready", False, 200),
                             ("/status", False, 401), ("/status", True, 200)):
        got = get(base + path, auth)
        ok = got == want
        print(("ok  " if ok else "FAIL"), base + path, "auth" if auth else "no-auth",
              "want", want, "got", got, flush=True)
        if not ok:
            failed.append(base + path)
sys.exit(1 if failed else 0)
{{- end -}}

{{/* jupiter.testPod: (dict "root" $ "urls" (list ...)) */}}
{{- define "jupiter.testPod" -}}
{{- $root := .root -}}
{{- $ctx := dict "root" $root "component" "test" -}}
apiVersion: v1
kind: Pod
metadata:
  name: {{ include "jupiter.name" (list $root "test") }}
  namespace: {{ $root.Release.Namespace }}
  labels:
    {{- include "jupiter.labels" $ctx | nindent 4 }}
  annotations:
    helm.sh/hook: test
    helm.sh/hook-delete-policy: before-hook-creation,hook-succeeded
spec:
  restartPolicy: Never
  automountServiceAccountToken: false
  enableServiceLinks: false
  {{- with $root.Values.imagePullSecrets }}
  imagePullSecrets:
    {{- range . }}
    - name: {{ . }}
    {{- end }}
  {{- end }}
  {{- with $root.Values.tolerations }}
  tolerations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  securityContext:
    {{- include "jupiter.podSecurityContext" . | nindent 4 }}
  containers:
    - name: check
      image: {{ include "jupiter.image" $root | quote }}
      imagePullPolicy: {{ $root.Values.image.pullPolicy }}
      command: ["python", "-c"]
      args:
        - {{ include "jupiter.testScript" . | quote }}
        {{- range .urls }}
        - {{ . | quote }}
        {{- end }}
      resources:
        requests:
          cpu: 10m
          memory: 32Mi
        limits:
          cpu: 200m
          memory: 64Mi
      securityContext:
        {{- include "jupiter.containerSecurityContext" . | nindent 8 }}
      volumeMounts:
        - name: token
          mountPath: /var/run/jupiter
          readOnly: true
        - name: tmp
          mountPath: /tmp
  volumes:
    - name: token
      secret:
        secretName: {{ include "jupiter.tokenSecretName" $root }}
        defaultMode: 288  # 0440: owner root, group fsGroup (10001) may read
        items:
          - key: token
            path: token
    - name: tmp
      emptyDir:
        sizeLimit: 16Mi
{{- end -}}

{{/* jupiter.tokenSecret: the shared transport token; see docs/kubernetes.md "Token". */}}
{{- define "jupiter.tokenSecret" -}}
{{- $name := include "jupiter.tokenSecretName" . -}}
{{- $existing := lookup "v1" "Secret" .Release.Namespace $name | default dict -}}
{{- $current := dig "data" "token" "" $existing -}}
apiVersion: v1
kind: Secret
metadata:
  name: {{ $name }}
  namespace: {{ .Release.Namespace }}
  labels:
    {{- include "jupiter.labels" (dict "root" . "component" "token") | nindent 4 }}
  annotations:
    # Data comes from the cluster (lookup) or is random: never compare it for changes.
    jupiter.io/diff-ignore-data: "true"
type: Opaque
data:
  {{- if .Values.token.value }}
  token: {{ .Values.token.value | b64enc | quote }}
  {{- else if $current }}
  token: {{ $current | quote }}
  {{- else }}
  token: {{ randAlphaNum 48 | b64enc | quote }}
  {{- end }}
{{- end -}}

{{/*
jupiter.networkPolicy: ingress to this release's pods only from pods of the same
deployment (label jupiter.io/deployment), on the component ports, plus
values.networkPolicy.extraFrom peers (e.g. a Prometheus namespace).
*/}}
{{- define "jupiter.networkPolicy" -}}
{{- $root := .root -}}
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: {{ include "jupiter.name" (list $root "ingress") }}
  namespace: {{ $root.Release.Namespace }}
  labels:
    {{- include "jupiter.labels" (dict "root" $root "component" "network-policy") | nindent 4 }}
spec:
  podSelector:
    matchLabels:
      app.kubernetes.io/name: {{ $root.Chart.Name }}
      app.kubernetes.io/instance: {{ $root.Release.Name }}
  policyTypes:
    - Ingress
  ingress:
    - from:
        - podSelector:
            matchLabels:
              jupiter.io/deployment: {{ $root.Values.deployment }}
        {{- with $root.Values.networkPolicy.extraFrom }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      ports:
        {{- range (.ports | uniq) }}
        - protocol: TCP
          port: {{ int . }}
        {{- end }}
{{- end -}}
