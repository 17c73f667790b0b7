{{/*
One agent component Deployment. Call with (dict "root" $ "name" NAME "component" C "comp" VALUES "sa" SA "extraEnv" LIST "sidecar" BOOL "args" LIST).
*/}}
{{- define "agent.deployment" -}}
{{- $root := .root -}}
{{- $c := .comp -}}
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ .name }}
  namespace: {{ include "agent.namespace" $root }}
  labels:
    {{- include "agent.labels" (dict "root" $root "component" .component) | nindent 4 }}
  {{- with $root.Values.annotations }}
  annotations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
spec:
  replicas: {{ $c.replicas | default 1 }}
  selector:
    matchLabels:
      app: {{ .name }}
  template:
    metadata:
      labels:
        app: {{ .name }}
        {{- include "agent.labels" (dict "root" $root "component" .component) | nindent 8 }}
      {{- with $root.Values.annotations }}
      annotations:
        {{- toYaml . | nindent 8 }}
      {{- end }}
    spec:
      {{- include "agent.podSpecCommon" (dict "root" $root "sa" .sa) | nindent 6 }}
      {{- with $c.terminationGracePeriodSeconds }}
      terminationGracePeriodSeconds: {{ . }}
      {{- end }}
      {{- with $c.nodeSelector }}
      nodeSelector:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $c.initContainers }}
      initContainers:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      containers:
        - name: {{ .component }}
          image: {{ $c.image | default $root.Values.image | required (printf "%s: set image or %s.image" .name .component) }}
          imagePullPolicy: {{ $c.imagePullPolicy | default $root.Values.imagePullPolicy }}
          {{- with .args }}
          args:
            {{- toYaml . | nindent 12 }}
          {{- end }}
          env:
            {{- if .coreEnv }}
            {{- include "agent.env" $root | nindent 12 }}
            {{- end }}
            {{- with .extraEnv }}
            {{- toYaml . | nindent 12 }}
            {{- end }}
            {{- with $c.env }}
            {{- toYaml . | nindent 12 }}
            {{- end }}
          {{- with $c.resources }}
          resources:
            {{- toYaml . | nindent 12 }}
          {{- end }}
          {{- with ($c.containerSecurityContext | default $root.Values.containerSecurityContext) }}
          securityContext:
            {{- toYaml . | nindent 12 }}
          {{- end }}
          {{- with $c.livenessProbe }}
          livenessProbe:
            {{- toYaml . | nindent 12 }}
          {{- end }}
          {{- with $c.readinessProbe }}
          readinessProbe:
            {{- toYaml . | nindent 12 }}
          {{- end }}
          {{- with $c.volumeMounts }}
          volumeMounts:
            {{- toYaml . | nindent 12 }}
          {{- end }}
        {{- if .sidecar }}
        {{- include "agent.loggingSidecar" $root | nindent 8 }}
        {{- end }}
        {{- with $c.extraContainers }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      {{- $vols := concat ($c.volumes | default list) (ternary (include "agent.loggingSidecarVolume" $root | fromYamlArray) list (and .sidecar $root.Values.loggingSidecar.enabled)) }}
      {{- with $vols }}
      volumes:
        {{- toYaml . | nindent 8 }}
      {{- end }}
{{- end -}}

{{/* A ServiceAccount. Call with (dict "root" $ "name" NAME "component" C "sa" VALUES). */}}
{{- define "agent.serviceAccount" -}}
apiVersion: v1
kind: ServiceAccount
metadata:
  name: {{ .name }}
  namespace: {{ include "agent.namespace" .root }}
  labels:
    {{- include "agent.labels" (dict "root" .root "component" .component) | nindent 4 }}
  {{- $ann := merge (dict) (.sa.annotations | default dict) (.root.Values.serviceAccount.annotations | default dict) (.root.Values.annotations | default dict) }}
  {{- with $ann }}
  annotations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end -}}
