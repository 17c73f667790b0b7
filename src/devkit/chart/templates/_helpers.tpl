{{/* Checks the real chart also enforces. */}}
{{- define "agent.validate" -}}
{{- $auth := 0 -}}
{{- if .Values.agentToken }}{{ $auth = add1 $auth }}{{ end -}}
{{- if .Values.agentTokenSecretName }}{{ $auth = add1 $auth }}{{ end -}}
{{- if .Values.agentTokenFile }}{{ $auth = add1 $auth }}{{ end -}}
{{- if gt $auth 1 -}}
{{- fail "only one of agentToken, agentTokenSecretName and agentTokenFile may be set" -}}
{{- end -}}
{{- if and .Values.imagePullSecretName .Values.imagePullSecretData -}}
{{- fail "imagePullSecretName and imagePullSecretData can not both be set" -}}
{{- end -}}
{{- if and .Values.openLineage.enabled .Values.openLineage.apiKey .Values.openLineage.apiKeySecret -}}
{{- fail "openLineage.apiKey and openLineage.apiKeySecret can not both be set" -}}
{{- end -}}
{{- end -}}

{{- define "agent.namespace" -}}
{{- default .Release.Namespace .Values.namespace -}}
{{- end -}}

{{/* Labels on every object: chart labels + values.labels. Call with (dict "root" $ "component" "worker"). */}}
{{- define "agent.labels" -}}
app.kubernetes.io/name: astro-remote-execution-agent
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version | replace "+" "_" }}
{{- with .component }}
app.kubernetes.io/component: {{ . }}
{{- end }}
{{- with .root.Values.labels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{- define "agent.tokenSecretName" -}}
{{- if .Values.agentToken -}}agent-token-secret{{- else -}}{{ .Values.agentTokenSecretName }}{{- end -}}
{{- end -}}

{{- define "agent.pullSecretName" -}}
{{- if .Values.imagePullSecretData -}}image-pull-secret{{- else -}}{{ .Values.imagePullSecretName }}{{- end -}}
{{- end -}}

{{/* Env every agent component gets: token, chart-level settings, commonEnv, OpenLineage. */}}
{{- define "agent.env" -}}
{{- $v := .Values -}}
- name: ASTRO_DEPLOYMENT_API_URL
  value: {{ $v.astroDeploymentAPIURL | quote }}
{{- if or $v.agentToken $v.agentTokenSecretName }}
- name: ASTRO_AGENT_CLIENT_API_TOKEN
  valueFrom:
    secretKeyRef:
      name: {{ include "agent.tokenSecretName" . }}
      key: token
{{- else if $v.agentTokenFile }}
- name: ASTRO_AGENT_CLIENT_API_TOKEN_FILE
  value: {{ $v.agentTokenFile | quote }}
{{- end }}
- name: AIRFLOW__LOGGING__LOGGING_LEVEL
  value: {{ $v.logLevel | quote }}
{{- with $v.secretBackend }}
- name: AIRFLOW__SECRETS__BACKEND
  value: {{ . | quote }}
{{- end }}
{{- with $v.xcomBackend }}
- name: AIRFLOW__CORE__XCOM_BACKEND
  value: {{ . | quote }}
{{- end }}
{{- with $v.dagBundleConfigList }}
- name: AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST
  value: {{ . | quote }}
{{- end }}
{{- if $v.openLineage.enabled }}
- name: OPENLINEAGE_URL
  value: {{ $v.openLineage.url | quote }}
- name: OPENLINEAGE_NAMESPACE
  value: {{ $v.openLineage.namespace | quote }}
{{- with $v.openLineage.endpoint }}
- name: OPENLINEAGE_ENDPOINT
  value: {{ . | quote }}
{{- end }}
{{- with $v.openLineage.facetsEnvironmentVariables }}
- name: OPENLINEAGE_FACETS_ENVIRONMENT_VARIABLES
  value: {{ join "," . | quote }}
{{- end }}
{{- if or $v.openLineage.apiKey $v.openLineage.apiKeySecret }}
- name: OPENLINEAGE_API_KEY
  valueFrom:
    secretKeyRef:
      name: {{ if $v.openLineage.apiKey }}openlineage-api-key-secret{{ else }}{{ $v.openLineage.apiKeySecret }}{{ end }}
      key: api-key
{{- end }}
{{- else }}
- name: OPENLINEAGE_DISABLED
  value: "true"
{{- end }}
{{- with $v.commonEnv }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* Pod-level fields shared by all components. Call with (dict "root" $ "sa" NAME). */}}
{{- define "agent.podSpecCommon" -}}
serviceAccountName: {{ .sa }}
{{- with include "agent.pullSecretName" .root }}
imagePullSecrets:
  - name: {{ . }}
{{- end }}
{{- with .root.Values.podSecurityContext }}
securityContext:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{/* The logging sidecar container, when enabled. */}}
{{- define "agent.loggingSidecar" -}}
{{- $s := .Values.loggingSidecar -}}
{{- if $s.enabled }}
- name: {{ $s.name }}
  image: {{ $s.image }}
  imagePullPolicy: {{ $s.imagePullPolicy | default "IfNotPresent" }}
  args: ["--config", "/etc/vector/vector.yaml"]
  {{- with $s.env }}
  env:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $s.resources }}
  resources:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $s.securityContext }}
  securityContext:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  lifecycle:
    preStop:
      exec:
        command: ["sleep", "{{ $s.preStopSleepSeconds | default 5 }}"]
  volumeMounts:
    - name: {{ $s.name }}-config
      mountPath: /etc/vector
      readOnly: true
    {{- with $s.volumeMounts }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
{{- end }}
{{- end -}}

{{- define "agent.loggingSidecarVolume" -}}
{{- if .Values.loggingSidecar.enabled }}
- name: {{ .Values.loggingSidecar.name }}-config
  configMap:
    name: {{ .Values.loggingSidecar.name }}-cm
{{- end }}
{{- end -}}
