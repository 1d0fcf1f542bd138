Feature: Kubernetes workloads
  After a deploy every workload has rolled out completely, its pods are healthy, the spec and every pod run the
  released image with no pod of an older revision left, and its Services route to ready endpoints.

  @postdeploy @rollback @smoke @rollout
  Scenario: The rollout completes
    When the workload's rollout is watched until it completes or the rollout deadline passes
    Then every replica runs the newest revision and is available

  @postdeploy @rollback @pods
  Scenario: Pods are healthy
    When the workload's pods are read
    Then every pod is ready, in no terminal state and within the restart limit

  @postdeploy @image
  Scenario: The released image runs
    When the images of the workload and its pods are read
    Then the spec and every ready pod run the released image and no pod of an older revision remains

  @postdeploy @rollback @endpoints
  Scenario: Services route to ready endpoints
    When the Services selecting the workload's pods are read
    Then every one of them has a ready endpoint

  @postdeploy @predeploy @nodes
  Scenario: Nodes are healthy
    When the cluster's nodes are read
    Then every node is Ready, schedulable and not waiting for a reboot
