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
