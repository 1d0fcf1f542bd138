Feature: TLS certificates
  The certificate each host serves is trusted, names the host, is already valid and stays valid long enough:
  the leaf and the earliest-expiring certificate of its chain.

  @postdeploy @tls
  Scenario: Hosts serve valid certificates after the deploy
    When the certificates served on the component's hosts are inspected
    Then every certificate is trusted, names its host and is far enough from expiry

  @predeploy @tls
  Scenario: No certificate expires inside the promotion window
    When the certificates served on the component's hosts are inspected against the promotion window
    Then every certificate is trusted, names its host and is far enough from expiry

  @postdeploy @certificate
  Scenario: cert-manager Certificates are ready and really served
    When the component's cert-manager Certificates and what their hosts serve are read
    Then every Certificate is Ready, far enough from expiry, and served as its Secret holds it
