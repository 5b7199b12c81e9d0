{{/* Labels every object carries. */}}
{{- define "lanyard.labels" -}}
app.kubernetes.io/name: lanyard
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: lanyard
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "lanyard.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}

{{/* The trust material is required: say how to make it. */}}
{{- define "lanyard.required" -}}
{{- $how := "make it with `lanyard ca init --trust-domain TD --helm-values trust.yaml` and pass -f trust.yaml" -}}
{{- required (printf "trustAnchorsPEM is required: %s" $how) .Values.trustAnchorsPEM | trim -}}
{{- end -}}

{{/* A join-token secret: the given one, or 32 random bytes, base64url. */}}
{{- define "lanyard.tokenSecret" -}}
{{- if .Values.issuer.tokenSecret -}}
{{ .Values.issuer.tokenSecret }}
{{- else -}}
{{ randBytes 32 | b64enc | replace "+" "-" | replace "/" "_" | trimSuffix "=" }}
{{- end -}}
{{- end -}}

{{/* The CA's address, as the sidecars and the injector reach it. */}}
{{- define "lanyard.caAddr" -}}
lanyard-ca.{{ .Release.Namespace }}.svc:15012
{{- end -}}

{{/* Pod security shared by the CA and the injector. */}}
{{- define "lanyard.podSecurity" -}}
runAsNonRoot: true
runAsUser: 1337
runAsGroup: 1337
fsGroup: 1337
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{- define "lanyard.containerSecurity" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
capabilities:
  drop: [ALL]
{{- end -}}
