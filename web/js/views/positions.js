// Where each StatsBomb position stands on a team's half of the pitch: [across, depth], both in
// percent (across from the team's left touchline; depth from its own goal line to halfway x 2).
export const POSITIONS = {
  Goalkeeper: [50, 5],
  'Right Back': [85, 22], 'Right Center Back': [65, 18], 'Center Back': [50, 18], 'Left Center Back': [35, 18], 'Left Back': [15, 22],
  'Right Wing Back': [88, 32], 'Left Wing Back': [12, 32],
  'Right Defensive Midfield': [65, 30], 'Center Defensive Midfield': [50, 30], 'Left Defensive Midfield': [35, 30],
  'Right Midfield': [85, 38], 'Right Center Midfield': [65, 36], 'Center Midfield': [50, 36], 'Left Center Midfield': [35, 36], 'Left Midfield': [15, 38],
  'Right Wing': [85, 44], 'Right Attacking Midfield': [65, 42], 'Center Attacking Midfield': [50, 42], 'Left Attacking Midfield': [35, 42], 'Left Wing': [15, 44],
  // StatsBomb's docs call position 23 "Striker"; its event files say "Center Forward".
  'Right Center Forward': [62, 47], 'Center Forward': [50, 47], Striker: [50, 47], 'Left Center Forward': [38, 47],
  'Secondary Striker': [50, 44],
};
