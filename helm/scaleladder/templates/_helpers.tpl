{{/*
Names, labels, images and the shared env blocks of the scaleladder chart.
Kubernetes names are DNS labels: at most 63 characters, so every name is truncated.
*/}}

{{- define "scaleladder.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "scaleladder.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "scaleladder.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "scaleladder.selectorLabels" -}}
app.kubernetes.io/name: {{ include "scaleladder.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "scaleladder.labels" -}}
helm.sh/chart: {{ include "scaleladder.chart" . }}
{{ include "scaleladder.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: scaleladder
{{- end }}

{{/* The RayCluster's name; KubeRay derives the head service "<name>-head-svc" from it, so keep it short. */}}
{{- define "scaleladder.rayClusterName" -}}
{{- printf "%s-ray" (include "scaleladder.fullname" .) | trunc 40 | trimSuffix "-" }}
{{- end }}

{{- define "scaleladder.rayHeadService" -}}
{{- printf "%s-head-svc" (include "scaleladder.rayClusterName" .) }}
{{- end }}

{{/* Images: the tag defaults to the chart's appVersion; Ray images carry the variant (cpu, cu128) suffix. */}}
{{- define "scaleladder.controlPlaneImage" -}}
{{- printf "%s:%s" .Values.controlPlane.image.repository (default .Chart.AppVersion .Values.controlPlane.image.tag) }}
{{- end }}

{{- define "scaleladder.rayImage" -}}
{{- $root := index . 0 }}{{ $variant := index . 1 }}
{{- printf "%s:%s-%s" $root.Values.ray.image.repository (default $root.Chart.AppVersion $root.Values.ray.image.tag) $variant }}
{{- end }}

{{/* Secrets: a user-managed one when named in values, else the one this chart writes. */}}
{{- define "scaleladder.databaseSecretName" -}}
{{- default (printf "%s-database" (include "scaleladder.fullname" .)) .Values.database.existingSecret }}
{{- end }}

{{- define "scaleladder.databaseSecretKey" -}}
{{- if .Values.database.existingSecret }}{{ .Values.database.existingSecretKey }}{{ else }}url{{ end }}
{{- end }}

{{- define "scaleladder.authSecretName" -}}
{{- default (printf "%s-auth" (include "scaleladder.fullname" .)) .Values.auth.existingSecret }}
{{- end }}

{{- define "scaleladder.authSecretKey" -}}
{{- if .Values.auth.existingSecret }}{{ .Values.auth.existingSecretKey }}{{ else }}bootstrap-token{{ end }}
{{- end }}

{{- define "scaleladder.rayAuthSecretName" -}}
{{- default (printf "%s-ray-auth" (include "scaleladder.fullname" .)) .Values.ray.auth.existingSecret }}
{{- end }}

{{- define "scaleladder.rayAuthSecretKey" -}}
{{- if .Values.ray.auth.existingSecret }}{{ .Values.ray.auth.existingSecretKey }}{{ else }}token{{ end }}
{{- end }}

{{/* Host of the bundled Bitnami PostgreSQL: its service is named like its fullname. */}}
{{- define "scaleladder.postgresqlHost" -}}
{{- if .Values.postgresql.fullnameOverride }}
{{- .Values.postgresql.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else if contains "postgresql" .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-postgresql" .Release.Name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{/* The database URL written into the chart's Secret (only when no existingSecret is named). */}}
{{- define "scaleladder.databaseUrl" -}}
{{- if .Values.postgresql.enabled }}
{{- $auth := .Values.postgresql.auth }}
{{- $password := required "postgresql.auth.password is required when postgresql.enabled=true" $auth.password }}
{{- printf "postgresql+psycopg://%s:%s@%s:5432/%s" $auth.username (urlquery $password) (include "scaleladder.postgresqlHost" .) $auth.database }}
{{- else }}
{{- required "set database.url (an external PostgreSQL), database.existingSecret, or postgresql.enabled=true" .Values.database.url }}
{{- end }}
{{- end }}

{{/* A Secret value: the one given in values, else the one already in the cluster (so upgrades keep
     it), else a fresh random one. `lookup` is empty under `helm template`, so that renders a new one. */}}
{{- define "scaleladder.secretValue" -}}
{{- $root := index . 0 }}{{ $name := index . 1 }}{{ $key := index . 2 }}{{ $given := index . 3 }}
{{- if $given }}
{{- $given | b64enc }}
{{- else }}
{{- $existing := lookup "v1" "Secret" $root.Release.Namespace $name }}
{{- if and $existing $existing.data (hasKey $existing.data $key) }}
{{- index $existing.data $key }}
{{- else }}
{{- randAlphaNum 64 | b64enc }}
{{- end }}
{{- end }}
{{- end }}

{{- define "scaleladder.databaseEnv" -}}
- name: SCALELADDER_DATABASE_URL
  valueFrom:
    secretKeyRef:
      name: {{ include "scaleladder.databaseSecretName" . }}
      key: {{ include "scaleladder.databaseSecretKey" . }}
{{- end }}

{{/* Ray 2.60 turns token auth on by default; every node, the autoscaler and every client share one token. */}}
{{- define "scaleladder.rayAuthEnv" -}}
{{- if .Values.ray.auth.enabled -}}
- name: RAY_AUTH_MODE
  value: token
- name: RAY_AUTH_TOKEN
  valueFrom:
    secretKeyRef:
      name: {{ include "scaleladder.rayAuthSecretName" . }}
      key: {{ include "scaleladder.rayAuthSecretKey" . }}
{{- else -}}
- name: RAY_AUTH_MODE
  value: disabled
{{- end }}
{{- end }}

{{/* Pod volumes shared by every Ray pod: Tune's storage and a memory-backed /dev/shm for the object store. */}}
{{- define "scaleladder.rayVolumes" -}}
- name: ray-storage
{{- if .Values.ray.storage.existingClaim }}
  persistentVolumeClaim:
    claimName: {{ .Values.ray.storage.existingClaim }}
{{- else }}
  emptyDir: {}
{{- end }}
- name: dshm
  emptyDir:
    medium: Memory
    sizeLimit: {{ .Values.ray.sharedMemorySize }}
{{- end }}

{{- define "scaleladder.rayVolumeMounts" -}}
- name: ray-storage
  mountPath: {{ .Values.ray.storage.mountPath }}
- name: dshm
  mountPath: /dev/shm
{{- end }}

{{/*
One KubeRay worker group. Called with a dict:
  root   the chart's top-level context
  name   the group name (cpu, gpu)
  group  the group's values (replicas, min/max, resources, nodeSelector, tolerations, rayStartParams)
  image  the full image reference
  gpus   nvidia.com/gpu per pod (0 for none)
*/}}
{{- define "scaleladder.rayWorkerGroup" -}}
{{- $root := .root }}{{ $group := .group }}
{{- if or (gt (int $group.minReplicas) (int $group.maxReplicas)) (gt (int $group.replicas) (int $group.maxReplicas)) }}
{{- fail (printf "ray worker group %q: need minReplicas <= maxReplicas and replicas <= maxReplicas" .name) }}
{{- end }}
{{- $requests := deepCopy (default dict $group.resources.requests) }}
{{- $limits := deepCopy (default dict $group.resources.limits) }}
{{- if gt (int .gpus) 0 }}
{{- $_ := set $requests "nvidia.com/gpu" (int .gpus) }}
{{- $_ := set $limits "nvidia.com/gpu" (int .gpus) }}
{{- end -}}
- groupName: {{ .name }}
  replicas: {{ $group.replicas }}
  minReplicas: {{ $group.minReplicas }}
  maxReplicas: {{ $group.maxReplicas }}
  {{- if $group.rayStartParams }}
  rayStartParams:
    {{- range $key, $value := $group.rayStartParams }}
    {{ $key }}: {{ $value | quote }}
    {{- end }}
  {{- else }}
  rayStartParams: {}
  {{- end }}
  template:
    metadata:
      labels:
        {{- include "scaleladder.labels" $root | nindent 8 }}
        app.kubernetes.io/component: ray-worker-{{ .name }}
    spec:
      {{- with $root.Values.imagePullSecrets }}
      imagePullSecrets:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $root.Values.ray.podSecurityContext }}
      securityContext:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      containers:
        - name: ray-worker
          image: {{ .image }}
          imagePullPolicy: {{ $root.Values.ray.image.pullPolicy }}
          env:
            {{- include "scaleladder.rayAuthEnv" $root | nindent 12 }}
            {{- with $root.Values.ray.extraEnv }}
            {{- toYaml . | nindent 12 }}
            {{- end }}
          resources:
            {{- with $requests }}
            requests:
              {{- toYaml . | nindent 14 }}
            {{- end }}
            {{- with $limits }}
            limits:
              {{- toYaml . | nindent 14 }}
            {{- end }}
          volumeMounts:
            {{- include "scaleladder.rayVolumeMounts" $root | nindent 12 }}
      volumes:
        {{- include "scaleladder.rayVolumes" $root | nindent 8 }}
      {{- with $group.nodeSelector }}
      nodeSelector:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $group.tolerations }}
      tolerations:
        {{- toYaml . | nindent 8 }}
      {{- end }}
{{- end }}
