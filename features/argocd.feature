Feature: Argo CD Applications
  The Application Argo CD keeps in the cluster says it is synced to the released revision (a commit, tag or chart
  version), healthy, and that its last sync operation succeeded; drift, a failed sync, an error condition or an
  unhealthy resource fails with Argo CD's own words.

  @postdeploy @smoke @argocd
  Scenario: The Argo CD Application is synced to the release and healthy
    When the Argo CD Application is read from the cluster
    Then it is synced to the released revision, healthy, and its last sync succeeded
