Feature: Kubernetes objects of any kind
  Any object the cluster serves, custom resources included, exists and reports a healthy status by its kind's
  published rules: workload counts, Job and CronJob conditions, PVC phase, Service endpoints, Ingress address,
  HPA and PDB conditions, Ready/Available conditions and kstatus' Reconciling/Stalled for the rest. An object that
  publishes no status the suite can judge is "could not decide", never a pass.

  @postdeploy @rollback @resource
  Scenario: The object reports a healthy status
    When the object's status is watched until it is current or the rollout deadline passes
    Then it exists and reports a healthy status by its kind's rules
