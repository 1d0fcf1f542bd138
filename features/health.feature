Feature: Health endpoints
  After a deploy every component answers on its health endpoints: 2xx, inside the latency budget, with a body
  that says it is healthy and, where the environment says so, reports the released version.

  @postdeploy @rollback @smoke @http
  Scenario: Health endpoints answer healthy after the deploy
    When the component's health endpoints are probed once
    Then every health endpoint answers 2xx within its latency budget with a healthy body
