{{- define "bundle.tolerations" -}}
tolerations:  # KWOK's fake nodes carry this taint
  - key: kwok.x-k8s.io/node
    operator: Exists
    effect: NoSchedule
{{- end -}}
{{- define "bundle.volume" -}}
{{ printf "%s-%s-data" .Release.Namespace .Release.Name | trunc 63 | trimSuffix "-" }}
{{- end -}}
