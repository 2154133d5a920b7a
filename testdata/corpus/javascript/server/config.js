module.exports = {
  stripe: {
    secretKey: 'sk_live_OYXEifa1sLPFI9NyLBCkUTHH',
    testKey: 'sk_test_T6rN45oq2cF7PqKfwxdxlQZR',
    publishableKey: 'pk_live_KWmT2cKenHU5x1yCLxhywGfH',
  },
  slack: {
    botToken: 'xoxb-505875881423-4631241670961-jzb6dEDqITWbgCClWJP0ATy4',
    webhook: 'https://hooks.slack.com/services/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',
    signingSecret: process.env.SLACK_SIGNING_SECRET,
  },
  maps: {
    apiKey: 'AIzawZu7gyqeKJrc5n1AZztQex7WRV_3Rw-ZBXE',
  },
  github: {
    token: process.env.GITHUB_TOKEN || '<your-token-here>',
  },
  smtp: {
    password: 'changeme',
  },
  upstream: {
    tls: { rejectUnauthorized: false },
  },
  internal: {
    tls: { rejectUnauthorized: true, ca: process.env.INTERNAL_CA },
  },
};
