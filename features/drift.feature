Feature: Infrastructure drift
  The infrastructure code is planned the way a deploy plans it, refreshing every object from the real world first:
  a file or an Azure setting changed by hand, and code merged but not applied, both show up as changes the plan
  would make. Any change fails, naming each resource address and what apply would do to it; a plan that cannot be
  made (init failed, the state locked by another run, credentials refused) is an error, never a pass. A plan the
  pipeline saved (`tofu show -json`) is judged the same way.

  @predeploy @postdeploy @drift
  Scenario: What runs matches the infrastructure code
    When the infrastructure code is planned against what runs
    Then the plan has no change to make
