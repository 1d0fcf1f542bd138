Feature: Helm releases
  The release history Helm keeps in the cluster says the latest revision is deployed, from the released chart
  and app version; a failed or interrupted upgrade fails with the release's own description. Helm's record is not
  the cluster: every object the release rendered must exist, be healthy (its pods too) and still be what Helm
  applied, so a crash-looping release, or one rolled back and then patched by hand, fails.

  @postdeploy @smoke @helmrelease
  Scenario: The Helm release is deployed
    When the release's history is read from the cluster
    Then its latest revision is deployed with the released chart and app version

  @postdeploy @rollback @helmresources
  Scenario: Everything the release rendered is healthy and as rendered
    When every object the release rendered is read from the cluster
    Then each exists, is healthy and is as the release rendered it
