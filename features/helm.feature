Feature: Helm releases
  The release history Helm keeps in the cluster says the latest revision is deployed, from the released chart
  and app version; a failed or interrupted upgrade fails with the release's own description.

  @postdeploy @smoke @helmrelease
  Scenario: The Helm release is deployed
    When the release's history is read from the cluster
    Then its latest revision is deployed with the released chart and app version
