Feature: Manifest policy before the deploy
  Before a chart or a folder of manifests is deployed, it is rendered the way the deploy will render it (helm
  template with the environment's values files) and every object is checked against the target cluster's own schema,
  read from the cluster, CRDs included: what the API server would refuse fails here, not halfway through the deploy.
  Then the release checklist: requests and a memory limit, readiness and liveness probes, a non-root security
  context without privilege escalation, images pinned to the released version, more than one replica with a
  disruption budget that still lets a node drain, and a chart version bumped with its templates. Each rule blocks or
  warns as the environment says, and a finding accepted on purpose is silenced with its reason.

  @predeploy @policy
  Scenario: What is about to be deployed passes the cluster's schema and the release checklist
    When what is about to be deployed is rendered with the environment's values
    Then every object is valid for the target cluster and passes the release checklist
