Feature: Azure Container Apps and Function Apps
  "Deployment succeeded" is not enough: the new revision must be provisioned, healthy, running and taking the
  traffic, and the function app's latest deployment must have loaded its functions.

  @postdeploy @smoke @containerapp
  Scenario: The container app runs the release
    When the container app is watched until provisioning settles or the provisioning deadline passes
    Then the app provisioned, its latest revision is healthy, takes the expected traffic and runs the release

  @postdeploy @smoke @functionapp
  Scenario: The function app runs the release
    When the function app, its latest deployment and its functions are read
    Then the site runs, the latest deployment succeeded with the released version, and functions are loaded
